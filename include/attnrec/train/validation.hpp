#pragma once
/// \file Validation during training: the metrics.jsonl row, early stopping, and whether the
/// model is the best so far.

#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <optional>

#include "attnrec/config/config.hpp"
#include "attnrec/data/dataset.hpp"
#include "attnrec/io/metrics_log.hpp"
#include "attnrec/io/train_state.hpp"
#include "attnrec/model/recommender.hpp"

namespace attnrec {

class Validation {
 public:
  Validation(const Config& config, const SampleSet& valid, torch::Device device, MetricsLog log);
  /// Scores the validation set, appends its row to metrics.jsonl (counted in
  /// state.metrics_rows) and updates early stopping. Returns the metrics when the model is the
  /// best so far (never for non-finite scores). An undefined stopping metric (one class only)
  /// is a DataError.
  std::optional<nlohmann::json> run(Recommender& model, TrainState& state, double train_loss);

 private:
  const Config& config_;
  const SampleSet& valid_;
  torch::Device device_;
  MetricsLog log_;
};

}  // namespace attnrec
