#pragma once
/// \file Validation during training: the metrics.jsonl row, early stopping, and whether the
/// model is the best so far.

#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <optional>

#include "attnrec/config/config.hpp"
#include "attnrec/data/dataset.hpp"
#include "attnrec/eval/ranking_eval.hpp"
#include "attnrec/io/metrics_log.hpp"
#include "attnrec/io/train_state.hpp"
#include "attnrec/model/recommender.hpp"

namespace attnrec {

class Validation {
 public:
  /// `ranking` (may be null): the frozen validation candidates, ranked at every validation;
  /// required when train.early_stopping.metric is a ranking metric.
  Validation(const Config& config, const SampleSet& valid, torch::Device device, MetricsLog log,
             const RankingInput* ranking = nullptr);
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
  const RankingInput* ranking_;
};

}  // namespace attnrec
