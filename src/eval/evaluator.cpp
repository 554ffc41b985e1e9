#include "attnrec/eval/evaluator.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <mutex>
#include <optional>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include "attnrec/data/loader.hpp"
#include "attnrec/data/tsv.hpp"
#include "attnrec/eval/metrics.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

std::vector<double> score(Recommender& model, const SampleSet& set, const EvalOptions& options,
                          const BatchObserver& observer) {
  const bool was_training = model->is_training();
  model->eval();
  std::vector<double> probabilities(static_cast<std::size_t>(set.size()));
  {
    c10::InferenceMode guard;
    const ItemGatesCache item_gates(model);  // first LSTM layer's input GEMM -> row copies
    // Batches of similar history lengths: padding costs attention and memory work for nothing
    // (W1's lengths 5..50 padded to each batch's longest waste ~45% of the positions).
    DataLoader loader(set, LoaderOptions()
                               .with_batch_size(options.batch_size)
                               .with_prefetch(2)
                               .with_by_length(true)
                               .with_pin_memory(options.device.is_cuda()));
    loader.start_epoch(0);
    // The model's probabilities for a batch, on its device (the observer sees every batch).
    const auto probabilities_of = [&](const Batch& host) {
      RECORD_USER_SCOPE("attnrec::score_batch");  // a profiler's batch boundary
      const Batch b = host.to(options.device);
      const auto out = model->forward(b);
      if (observer) observer(b, out);
      return torch::sigmoid(out.logits).reshape({-1});
    };
    // Writes probabilities `p` (any device) of the samples `index` (host) into the result.
    const auto store = [&](const torch::Tensor& p_any, const torch::Tensor& index_host) {
      const auto p = p_any.to(torch::kCPU, torch::kFloat64).contiguous();
      const double* value = p.data_ptr<double>();
      const std::int64_t* index = index_host.data_ptr<std::int64_t>();
      for (std::int64_t i = 0; i < p.numel(); ++i) {
        probabilities[static_cast<std::size_t>(index[i])] = value[i];
      }
    };
    const auto workers = static_cast<std::int64_t>(at::get_num_threads());
    if (options.device.is_cpu() && !observer && workers > 1 && !at::in_parallel_region()) {
      // On CPU, whole batches in parallel (one per intra-op thread) rather than each batch's
      // operators split across threads: no thread waits at the end of every operator for the
      // slowest part, and the serial parts of a batch (query projection, head) overlap. The
      // operators see the parallel region and run on their own thread. Rows are disjoint.
      std::mutex loader_mutex;
      at::parallel_for(0, workers, 1, [&](std::int64_t, std::int64_t) {
        c10::InferenceMode worker_guard;  // thread-local, like grad mode
        while (true) {
          std::optional<Batch> batch;
          {
            std::lock_guard<std::mutex> lock(loader_mutex);
            batch = loader.next();
          }
          if (!batch) break;
          store(probabilities_of(*batch), batch->index);
        }
      });
    } else {
      // One batch after another. The probabilities are read back every kBatchesPerRead batches
      // rather than after each: on CUDA a read makes the host wait for the device, so reading
      // per batch would stop the next batches' copies and kernels from queueing behind it.
      constexpr std::size_t kBatchesPerRead = 64;
      std::vector<torch::Tensor> pending, pending_index;
      const auto flush = [&] {
        if (pending.empty()) return;
        store(torch::cat(pending), torch::cat(pending_index));
        pending.clear();
        pending_index.clear();
      };
      while (auto batch = loader.next()) {
        pending.push_back(probabilities_of(*batch));
        pending_index.push_back(batch->index);  // host copy
        if (pending.size() == kBatchesPerRead) flush();
      }
      flush();
    }
  }
  model->train(was_training);
  return probabilities;
}

nlohmann::json compute_metrics(const SampleSet& set, const std::vector<double>& probabilities,
                               double threshold) {
  if (!set.has_labels) throw DataError(set.source + ": metrics need a label column");
  nlohmann::json m;
  // A diverged model scores NaN; ranking metrics are undefined then (and sorting NaNs is too).
  const auto nonfinite = std::count_if(probabilities.begin(), probabilities.end(),
                                       [](double p) { return !std::isfinite(p); });
  if (nonfinite > 0) {
    m = {{"auc", nullptr},
         {"gauc", nullptr},
         {"logloss", nullptr},
         {"nonfinite_scores", nonfinite},
         {"samples", set.size()},
         {"positives", set.stats.positives},
         {"oov_rate", set.stats.oov_rate()},
         {"skipped_lines", set.stats.skipped}};
    return m;
  }
  const auto a = auc(probabilities, set.labels);
  m["auc"] = a ? nlohmann::json(*a) : nlohmann::json();
  if (set.has_users) {
    const auto g = gauc(probabilities, set.labels, set.user_groups);
    m["gauc"] = g.value ? nlohmann::json(*g.value) : nlohmann::json();
    m["gauc_users"] = g.users_used;
    m["gauc_users_excluded"] = g.users_excluded;
  } else {
    m["gauc"] = nullptr;  // no user column: no groups
  }
  m["logloss"] = logloss(probabilities, set.labels);
  const auto t = threshold_metrics(probabilities, set.labels, threshold);
  m["accuracy"] = t.accuracy;
  m["precision"] = t.precision;
  m["recall"] = t.recall;
  m["f1"] = t.f1;
  m["threshold"] = threshold;
  m["samples"] = set.size();
  m["positives"] = set.stats.positives;
  m["oov_rate"] = set.stats.oov_rate();
  m["skipped_lines"] = set.stats.skipped;
  return m;
}

EvalResult evaluate(Recommender& model, const SampleSet& set, const EvalOptions& options) {
  EvalResult r;
  r.probabilities = score(model, set, options);
  r.metrics = compute_metrics(set, r.probabilities, options.threshold);
  return r;
}

std::string format_metrics_table(const nlohmann::json& m) {
  std::string out = fmt::format("{:<22}{:>12}\n", "metric", "value");
  out += std::string(34, '-') + "\n";
  for (const char* key :
       {"auc", "gauc", "logloss", "accuracy", "precision", "recall", "f1", "oov_rate"}) {
    if (!m.contains(key)) continue;
    const auto& v = m[key];
    out += v.is_number() ? fmt::format("{:<22}{:>12.4f}\n", key, v.get<double>())
                         : fmt::format("{:<22}{:>12}\n", key, "n/a");
  }
  for (const char* key : {"attention_mass_ratio"}) {
    if (m.contains(key)) out += fmt::format("{:<22}{:>12.4f}\n", key, m[key].get<double>());
  }
  for (const char* key :
       {"samples", "positives", "gauc_users", "gauc_users_excluded", "skipped_lines"}) {
    if (m.contains(key) && m[key].is_number()) {
      out += fmt::format("{:<22}{:>12}\n", key, m[key].get<std::int64_t>());
    }
  }
  return out;
}

}  // namespace attnrec

namespace attnrec {

void write_predictions(const std::string& path, const SampleSet& set,
                       const std::vector<std::string>& columns,
                       const std::vector<double>& probabilities, bool with_labels) {
  int user_col = -1, item_col = -1;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == "user") user_col = static_cast<int>(i);
    if (columns[i] == "item") item_col = static_cast<int>(i);
  }
  // The encoded set keeps ids as vocabulary indices (unknown ids are all OOV), so the original
  // strings are read back from the source lines.
  TsvReader in(set.source, "sample file (again, to copy ids into the predictions)");
  std::string out = with_labels ? "line\tuser\titem\tlabel\tscore\n" : "line\tuser\titem\tscore\n";
  for (std::int64_t i = 0; i < set.size(); ++i) {
    while (in.line_number() < set.line_numbers[i] && in.next()) {
    }
    const std::int64_t line_number = in.line_number();
    const auto& fields = in.fields();
    const auto field = [&](int col) {
      return col >= 0 && static_cast<std::size_t>(col) < fields.size() ? fields[col]
                                                                       : std::string_view();
    };
    out += fmt::format("{}\t{}\t{}\t", line_number, field(user_col), field(item_col));
    if (with_labels) out += fmt::format("{}\t", set.labels[i]);
    out += fmt::format("{:.6f}\n", probabilities[i]);
  }
  write_file_atomic(path, out);
}

}  // namespace attnrec
