#pragma once
/// \file Scoring a SampleSet with a model and computing metrics over the whole set. The same
/// evaluate() serves `attnrec evaluate` and validation during training.

#include <torch/torch.h>
#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

#include "attnrec/data/dataset.hpp"
#include "attnrec/model/recommender.hpp"

namespace attnrec {

/// Options of score() and evaluate().
struct EvalOptions {
  /// Samples per batch. Default: 1024
  std::int64_t batch_size = 1024;
  /// Probability threshold of accuracy/precision/recall/F1. Default: 0.5
  double threshold = 0.5;
  /// Where the model runs. Default: CPU
  torch::Device device = torch::kCPU;

  EvalOptions& with_batch_size(std::int64_t v) {
    batch_size = v;
    return *this;
  }
  EvalOptions& with_threshold(double v) {
    threshold = v;
    return *this;
  }
  EvalOptions& with_device(torch::Device v) {
    device = v;
    return *this;
  }
};

/// Called for every scored batch (on the model's device), e.g. to inspect attention weights.
using BatchObserver = std::function<void(const Batch&, const RecommenderOutput&)>;

/// Click probabilities of every sample, in file order. Runs in inference mode with the model in
/// eval mode (its previous mode is restored). Results stay on the device until the end, so there
/// is one device-to-host copy, not one per batch.
std::vector<double> score(Recommender& model, const SampleSet& set, const EvalOptions& options,
                          const BatchObserver& observer = {});

/// Metrics of `probabilities` against the labels of `set`: auc, gauc (+ gauc_users,
/// gauc_users_excluded), logloss, accuracy, precision, recall, f1, samples, positives,
/// oov_rate, skipped_lines. Undefined values (e.g. AUC of one class) are JSON null.
nlohmann::json compute_metrics(const SampleSet& set, const std::vector<double>& probabilities,
                               double threshold);

/// score() + compute_metrics().
struct EvalResult {
  nlohmann::json metrics;
  std::vector<double> probabilities;
};
EvalResult evaluate(Recommender& model, const SampleSet& set, const EvalOptions& options);

/// A readable two-column table of the main metrics.
std::string format_metrics_table(const nlohmann::json& metrics);

}  // namespace attnrec

namespace attnrec {

/// Writes one line per scored sample: "line<TAB>user<TAB>item[<TAB>label]<TAB>score" with a
/// header, where line is the 1-based line in `set.source` and user/item are the original id
/// strings (empty when the data has no such column). Written atomically.
void write_predictions(const std::string& path, const SampleSet& set,
                       const std::vector<std::string>& columns,
                       const std::vector<double>& probabilities, bool with_labels);

}  // namespace attnrec
