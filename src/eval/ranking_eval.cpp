#include "attnrec/eval/ranking_eval.hpp"
#include "attnrec/data/batching.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include "attnrec/data/batch.hpp"
#include "attnrec/data/tsv.hpp"
#include "attnrec/eval/ranking.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/progress.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

RankingInput read_candidates_file(const std::string& path, const ReaderOptions& reader,
                                  const Vocab& items, const Vocab& users) {
  ReaderOptions options = reader;
  options.columns = {"user", "item", "history", "time", "ignore"};
  options.header = HeaderMode::yes;
  options.require_both_classes = false;
  RankingInput in;
  in.protocol = "sampled";
  // The header must be the one preprocess writes; a different layout is a different file.
  TsvReader f(path, "candidates file");
  f.expect_header({"user", "item", "history", "time", "negatives"}, /*exact=*/true,
                  "of a candidates file written by `attnrec preprocess`");
  in.rows = read_sample_file(path, options, items, users);
  std::vector<std::string_view> tokens;
  std::size_t row = 0;
  in.negatives.resize(static_cast<std::size_t>(in.rows.size()));
  std::size_t expected = 0;
  while (row < in.negatives.size() && f.next()) {
    const std::int64_t n = f.line_number();
    if (n != in.rows.line_numbers[row]) continue;
    const auto& fields = f.fields();
    split(fields[4], ',', tokens);
    if (fields[4].empty() ||
        std::any_of(tokens.begin(), tokens.end(), [](std::string_view t) { return t.empty(); })) {
      throw DataError(
          fmt::format("{}:{}: negatives must be a non-empty comma-separated list", path, n));
    }
    if (row == 0) expected = tokens.size();
    if (tokens.size() != expected) {
      throw DataError(
          fmt::format("{}:{}: {} negatives, but the first row has {}; every row must "
                      "have the same number",
                      path, n, tokens.size(), expected));
    }
    auto& out = in.negatives[row];
    for (auto t : tokens) {
      const auto id = items.lookup(t);
      in.oov_candidates += id == Vocab::kOov;
      out.push_back(id);
    }
    ++row;
  }
  in.oov_positives = std::count(in.rows.items.begin(), in.rows.items.end(), Vocab::kOov);
  return in;
}

namespace {

/// The rows of a full ranking: the positives of `set`; `keep` their indices in `set`.
RankingInput full_ranking_rows(const SampleSet& set, const std::string& set_path,
                               const Vocab& items, std::vector<std::int64_t>& keep) {
  if (!set.has_labels || !set.has_items || !set.has_users) {
    throw DataError(set_path + ": full ranking needs label, user and item columns");
  }
  RankingInput in;
  in.protocol = "full";
  in.item_vocab = items.size();
  // Rows: the positives of the file.
  for (std::int64_t i = 0; i < set.size(); ++i) {
    if (set.labels[i] == 1) keep.push_back(i);
  }
  SampleSet& rows = in.rows;
  rows.source = set.source;
  rows.has_items = rows.has_users = true;
  rows.history_offsets.push_back(0);
  for (const auto i : keep) {
    rows.items.push_back(set.items[i]);
    rows.users.push_back(set.users[i]);
    rows.user_groups.push_back(set.user_groups[i]);
    rows.line_numbers.push_back(set.line_numbers[i]);
    rows.history.insert(rows.history.end(), set.history.begin() + set.history_offsets[i],
                        set.history.begin() + set.history_offsets[i + 1]);
    rows.history_offsets.push_back(static_cast<std::int64_t>(rows.history.size()));
  }
  rows.stats.samples = static_cast<std::int64_t>(keep.size());
  in.oov_positives = std::count(rows.items.begin(), rows.items.end(), Vocab::kOov);
  return in;
}

/// Sorted, unique exclusions per row: `seen` of the row's key, without the row's target.
void add_exclusions(RankingInput& in, const SampleSet& set, const std::vector<std::int64_t>& keep,
                    std::vector<std::vector<std::int32_t>>& seen, bool by_user_id) {
  for (auto& s : seen) {
    std::sort(s.begin(), s.end());
    s.erase(std::unique(s.begin(), s.end()), s.end());
  }
  for (const auto i : keep) {
    const auto key = by_user_id ? set.users[i] : set.user_groups[i];
    auto ex = key >= 0 && key < static_cast<std::int64_t>(seen.size())
                  ? seen[static_cast<std::size_t>(key)]
                  : std::vector<std::int32_t>{};
    ex.erase(std::remove(ex.begin(), ex.end(), set.items[i]), ex.end());  // the target stays
    in.excluded.push_back(std::move(ex));
  }
}

}  // namespace

RankingInput full_ranking_input(const SampleSet& set, const std::string& set_path,
                                const Vocab& items, const Vocab& users,
                                const std::string& interactions) {
  std::vector<std::int64_t> keep;
  RankingInput in = full_ranking_rows(set, set_path, items, keep);

  // Interacted items per user group of `set` (groups are per-file user indices).
  std::vector<std::vector<std::int32_t>> seen(static_cast<std::size_t>(set.user_group_count));
  if (!interactions.empty()) {
    // Map user strings of the log to the file's groups through the user vocabulary is not
    // possible for OOV users, so the log is joined on the user's vocabulary id and group.
    std::vector<std::int32_t> group_of_user(static_cast<std::size_t>(users.size()), -1);
    for (std::int64_t i = 0; i < set.size(); ++i) group_of_user[set.users[i]] = set.user_groups[i];
    TsvReader f(interactions, "interaction log");
    f.expect_header({"user", "item"}, /*exact=*/false);
    while (f.next()) {
      const auto& fields = f.fields();
      if (fields.size() < 2) f.fail("expected user<TAB>item[<TAB>time]");
      const auto u = users.lookup(fields[0]);
      if (u == Vocab::kOov) continue;  // users unknown to the model are not ranked per user
      const auto g = group_of_user[u];
      if (g >= 0) seen[g].push_back(items.lookup(fields[1]));
    }
  } else {
    for (std::int64_t i = 0; i < set.size(); ++i) {
      auto& s = seen[set.user_groups[i]];
      if (set.labels[i] == 1) s.push_back(set.items[i]);
      s.insert(s.end(), set.history.begin() + set.history_offsets[i],
               set.history.begin() + set.history_offsets[i + 1]);
    }
  }
  add_exclusions(in, set, keep, seen, /*by_user_id=*/false);
  return in;
}

RankingInput full_ranking_input(const SampleSet& set, const std::string& set_path,
                                const Vocab& items, const Vocab& users, const SampleSet& training) {
  std::vector<std::int64_t> keep;
  RankingInput in = full_ranking_rows(set, set_path, items, keep);
  if (!training.has_users) {
    throw DataError(training.source +
                    ": full ranking leaves out each user's training items, but the file has no "
                    "user column; add \"user\" to data.columns, or rank against frozen "
                    "candidates (train.early_stopping.protocol \"sampled\")");
  }
  // Interacted items per user vocabulary id: every training history and positive item.
  std::vector<std::vector<std::int32_t>> seen(static_cast<std::size_t>(users.size()));
  for (std::int64_t i = 0; i < training.size(); ++i) {
    const auto u = training.users[i];
    if (u <= Vocab::kOov) continue;  // unknown users share no history
    auto& s = seen[static_cast<std::size_t>(u)];
    if (!training.has_labels || training.labels[i] == 1) s.push_back(training.items[i]);
    s.insert(s.end(), training.history.begin() + training.history_offsets[i],
             training.history.begin() + training.history_offsets[i + 1]);
  }
  add_exclusions(in, set, keep, seen, /*by_user_id=*/true);
  return in;
}

torch::Tensor RankingScorer::score_all(const SampleSet& set, std::int64_t begin, std::int64_t count,
                                       std::int64_t first, std::int64_t end) {
  const auto ids = torch::arange(first, end, torch::kInt64);
  return score(set, begin, count, ids.unsqueeze(0).expand({count, end - first}).contiguous());
}

std::int64_t RankingScorer::rows_per_full_call(std::int64_t items, std::int64_t pairs) const {
  (void)items;
  return std::max<std::int64_t>(1, std::min<std::int64_t>(64, pairs / 64));
}

namespace {

class ModelScorer : public RankingScorer {
 public:
  // Scores come from the model in evaluation mode (no dropout), whatever mode the caller left it
  // in: validation during training scores the model being trained. The mode is restored when the
  // scorer goes.
  ModelScorer(Recommender& model, torch::Device device, std::int64_t pairs)
      : model_(model), device_(device), pairs_(pairs), was_training_(model->is_training()) {
    model_->eval();
  }
  ~ModelScorer() override { model_->train(was_training_); }
  ModelScorer(const ModelScorer&) = delete;
  ModelScorer& operator=(const ModelScorer&) = delete;

  torch::Tensor score(const SampleSet& set, std::int64_t begin, std::int64_t count,
                      const torch::Tensor& candidates) override {
    c10::InferenceMode guard;
    const EncodedHistory encoded = model_->encode(rows_batch(set, begin, count));
    const auto cands = candidates.to(device_);
    const auto long_options = torch::TensorOptions().dtype(torch::kInt64).device(device_);
    std::vector<torch::Tensor> rows_out;
    const std::int64_t m = candidates.size(1);
    if (uses_side()) {
      // The candidate side of the block's candidates in one pass, then each history against its
      // own rows of it.
      const auto side = model_->candidate_side(cands.reshape({-1}));
      for (std::int64_t r = 0; r < count; ++r) {
        const EncodedHistory one = encoded.select_rows(torch::full({1}, r, long_options));
        rows_out.push_back(model_->score_candidates(one, narrow(side, r * m, (r + 1) * m))[0]);
      }
      return torch::stack(rows_out).to(torch::kCPU, torch::kFloat64);
    }
    // Each history is broadcast against a chunk of its candidates: the keys are never copied
    // per candidate, and a chunk's [chunk, T, A] temporaries stay small.
    const std::int64_t chunk = std::max<std::int64_t>(1, std::min(pairs_, m));
    for (std::int64_t r = 0; r < count; ++r) {
      const EncodedHistory one = encoded.select_rows(torch::full({1}, r, long_options));
      std::vector<torch::Tensor> parts;
      for (std::int64_t c0 = 0; c0 < m; c0 += chunk) {
        const std::int64_t c = std::min(chunk, m - c0);
        parts.push_back(model_->score(one, cands[r].narrow(0, c0, c)).logits.view({c}));
      }
      rows_out.push_back(torch::cat(parts));
    }
    // Logits rank like probabilities and keep more resolution near 0 and 1 (fewer false ties).
    return torch::stack(rows_out).to(torch::kCPU, torch::kFloat64);
  }

  torch::Tensor score_all(const SampleSet& set, std::int64_t begin, std::int64_t count,
                          std::int64_t first, std::int64_t end) override {
    if (!model_->factorised() && !uses_side()) {
      return RankingScorer::score_all(set, begin, count, first, end);  // candidate by candidate
    }
    c10::InferenceMode guard;
    const auto encoded = model_->encode(rows_batch(set, begin, count));
    if (!model_->factorised()) {
      return model_->score_candidates(encoded, narrow(full_side(), first, end)).to(torch::kCPU);
    }
    if (!table_.defined() || table_first_ != first || table_end_ != end) {
      // The item side once per evaluation: the weights do not change while it ranks.
      const auto ids =
          torch::arange(first, end, torch::TensorOptions().dtype(torch::kInt64)).to(device_);
      auto [vectors, bias] = model_->item_vectors(ids);
      table_ = vectors.t().contiguous();
      bias_ = bias;
      table_first_ = first;
      table_end_ = end;
    }
    return torch::addmm(bias_.unsqueeze(0), model_->user_states(encoded), table_).to(torch::kCPU);
  }

  std::int64_t rows_per_full_call(std::int64_t items, std::int64_t pairs) const override {
    if (!model_->options.has_item()) return RankingScorer::rows_per_full_call(items, pairs);
    // [rows, items] float32 scores of at most ~64 MB per call (the candidate side scores one
    // history at a time across the threads: fewer rows per call suffice).
    const std::int64_t most = model_->factorised() ? 1024 : 64;
    return std::max<std::int64_t>(1, std::min<std::int64_t>(most, (16LL << 20) / items));
  }

 private:
  /// Whether candidates are scored through the model's candidate side (computed once).
  bool uses_side() const { return model_->options.has_item(); }

  /// The candidate side of every id of the vocabulary, computed on first use (the weights do not
  /// change while a scorer ranks).
  const CandidateSide& full_side() {
    if (!side_.candidate.defined()) {
      side_ = model_->candidate_side(
          torch::arange(model_->options.item_vocab(),
                        torch::TensorOptions().dtype(torch::kInt64).device(device_)));
    }
    return side_;
  }

  /// Rows [first, end) of every tensor of `side` (views).
  static CandidateSide narrow(const CandidateSide& side, std::int64_t first, std::int64_t end) {
    auto part = [&](const torch::Tensor& t) {
      return t.defined() ? t.narrow(0, first, end - first) : t;
    };
    return {part(side.candidate), part(side.query), part(side.prepared), part(side.head_term),
            part(side.bias)};
  }

  /// Rows [begin, begin + count) of `set` as one batch on the device.
  Batch rows_batch(const SampleSet& set, std::int64_t begin, std::int64_t count) const {
    std::vector<std::int64_t> index(static_cast<std::size_t>(count));
    std::iota(index.begin(), index.end(), begin);
    return make_batch(set, index.data(), count).to(device_);
  }

  Recommender& model_;
  torch::Device device_;
  std::int64_t pairs_;
  torch::Tensor table_, bias_;  // factorised: item vectors [D, N] and biases [N]
  CandidateSide side_;          // models with a candidate: the side of every vocabulary id
  std::int64_t table_first_ = 0, table_end_ = 0;
  const bool was_training_;  // the model's mode before the scorer, restored by its destructor
};

class PopularityScorer : public RankingScorer {
 public:
  explicit PopularityScorer(std::vector<double> counts)
      : counts_(torch::tensor(counts, torch::kFloat64)) {}
  torch::Tensor score(const SampleSet&, std::int64_t, std::int64_t,
                      const torch::Tensor& candidates) override {
    return counts_.index({candidates});
  }

 private:
  torch::Tensor counts_;
};

}  // namespace

std::unique_ptr<RankingScorer> model_scorer(Recommender& model, torch::Device device,
                                            std::int64_t pairs_per_batch) {
  return std::make_unique<ModelScorer>(model, device, pairs_per_batch);
}

std::unique_ptr<RankingScorer> popularity_scorer(std::vector<double> counts) {
  return std::make_unique<PopularityScorer>(std::move(counts));
}

nlohmann::json evaluate_ranking(RankingScorer& scorer, const RankingInput& in,
                                const RankingOptions& options) {
  RankingAccumulator acc(options.ks);
  const std::int64_t n = in.rows.size();
  std::int64_t nonfinite = 0;
  std::int64_t candidates_total = 0;
  if (in.protocol == "sampled") {
    const std::int64_t m =
        in.negatives.empty() ? 0 : static_cast<std::int64_t>(in.negatives[0].size()) + 1;
    const std::int64_t block =
        std::max<std::int64_t>(1, options.pairs_per_batch / std::max<std::int64_t>(m, 1));
    for (std::int64_t b = 0; b < n; b += block) {
      const std::int64_t r = std::min(block, n - b);
      auto cands = torch::empty({r, m}, torch::kInt64);
      auto* p = cands.data_ptr<std::int64_t>();
      for (std::int64_t i = 0; i < r; ++i) {
        p[i * m] = in.rows.items[b + i];  // the positive first
        for (std::int64_t j = 1; j < m; ++j) p[i * m + j] = in.negatives[b + i][j - 1];
      }
      const auto s = scorer.score(in.rows, b, r, cands).to(torch::kFloat64).contiguous();
      const double* sp = s.data_ptr<double>();
      for (std::int64_t i = 0; i < r; ++i) {
        const double* row = sp + i * m;
        nonfinite += !std::isfinite(row[0]);
        acc.add(row[0], row + 1, static_cast<std::size_t>(m - 1));
        candidates_total += m - 1;
      }
    }
  } else {
    const std::int64_t v = in.item_vocab;
    const std::int64_t items = v - Vocab::kReserved;
    if (items < 1) throw DataError("full ranking: the vocabulary has no items");
    const std::int64_t block = scorer.rows_per_full_call(items, options.pairs_per_batch);
    for (std::int64_t b = 0; b < n; b += block) {
      const std::int64_t r = std::min(block, n - b);
      const auto s =
          scorer.score_all(in.rows, b, r, Vocab::kReserved, v).to(torch::kFloat64).contiguous();
      const double* sp = s.data_ptr<double>();
      for (std::int64_t i = 0; i < r; ++i) {
        const double* row = sp + i * items;
        const std::int32_t target = in.rows.items[b + i];
        // An OOV positive cannot be among the candidates; it is scored as the OOV id would be.
        double positive;
        if (target >= Vocab::kReserved) {
          positive = row[target - Vocab::kReserved];
        } else {
          const auto oov = torch::full({1, 1}, static_cast<std::int64_t>(target), torch::kInt64);
          positive = scorer.score(in.rows, b + i, 1, oov).item<double>();
        }
        nonfinite += !std::isfinite(positive);
        // Candidates: every item but the target and the exclusions. Count over all items in
        // one branch-free pass, then take out the target and the (few) excluded items.
        std::int64_t above = 0;
        for (std::int64_t k = 0; k < items; ++k) above += row[k] >= positive;
        std::int64_t count = items;
        const auto take_out = [&](std::int64_t id) {
          --count;
          above -= row[id - Vocab::kReserved] >= positive;
        };
        if (target >= Vocab::kReserved && target < v) take_out(target);
        for (const auto id : in.excluded[b + i]) {  // sorted, unique, without the target
          if (id >= Vocab::kReserved && id < v && id != target) take_out(id);
        }
        acc.add_rank(std::isnan(positive) ? count + 1 : above + 1);
        candidates_total += count;
      }
    }
  }
  auto result = acc.result();
  result["protocol"] = in.protocol;
  result["mean_candidates_per_row"] =
      n == 0 ? 0.0 : static_cast<double>(candidates_total) / static_cast<double>(n);
  result["oov_positives"] = in.oov_positives;
  if (in.protocol == "sampled") result["oov_candidates"] = in.oov_candidates;
  result["nonfinite_positive_scores"] = nonfinite;
  return result;
}

}  // namespace attnrec
