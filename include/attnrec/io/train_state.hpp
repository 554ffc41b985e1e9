#pragma once
/// \file Where training stands (epoch, step, best score, patience), and early stopping.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "attnrec/config/choices.hpp"

namespace attnrec {

/// Tracks the best validation score and the validations since it improved.
class EarlyStopping {
 public:
  EarlyStopping() = default;
  /// `metric`: logloss is lower-is-better, every other metric higher-is-better; `patience` 0
  /// never stops.
  EarlyStopping(StopMetric metric, std::int64_t patience);

  /// Records a validation score at `step`; returns true when it is a new best.
  bool update(double value, std::int64_t step);
  bool should_stop() const { return patience_ > 0 && bad_validations_ >= patience_; }
  StopMetric metric() const { return metric_; }
  /// The metric's name in metrics rows ("auc", "gauc", "logloss", "ndcg@10", ...).
  const std::string& metric_name() const { return name_of(metric_); }
  std::optional<double> best() const { return best_; }
  std::int64_t best_step() const { return best_step_; }
  std::int64_t bad_validations() const { return bad_validations_; }

  nlohmann::json to_json() const;
  static EarlyStopping from_json(const nlohmann::json& j);

 private:
  StopMetric metric_ = StopMetric::auc;
  std::int64_t patience_ = 0;
  std::optional<double> best_;
  std::int64_t best_step_ = -1;
  std::int64_t bad_validations_ = 0;
};

/// The position of a training run.
struct TrainState {
  std::int64_t epoch = 0;          ///< current epoch (0-based)
  std::int64_t step_in_epoch = 0;  ///< batches of `epoch` already trained
  std::int64_t global_step = 0;    ///< optimizer steps so far
  std::int64_t samples_seen = 0;
  double train_seconds = 0.0;  ///< wall time spent in training steps
  bool stopped_early = false;
  double epoch_loss_sum = 0.0;  ///< sum of sample losses so far in `epoch` (for its mean)
  std::int64_t epoch_loss_samples = 0;
  std::int64_t skipped_nonfinite = 0;  ///< batches dropped by train.on_nonfinite = skip
  std::int64_t metrics_rows = 0;       ///< rows in metrics.jsonl that belong to this state
  EarlyStopping early_stopping;

  nlohmann::json to_json() const;
  static TrainState from_json(const nlohmann::json& j);
};

}  // namespace attnrec
