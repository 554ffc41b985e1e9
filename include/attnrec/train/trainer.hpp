#pragma once
/// \file The training loop: Adam on binary cross-entropy with logits, LR schedule, gradient
/// clipping, validation with early stopping, best/final checkpoints and metrics.jsonl rows.

#include <nlohmann/json.hpp>
#include <string>
#include <torch/torch.h>

#include "attnrec/config/config.hpp"
#include "attnrec/data/dataset.hpp"
#include "attnrec/model/recommender.hpp"
#include "attnrec/train/train_state.hpp"

namespace attnrec {

/// Appends one JSON object per line to a file (metrics.jsonl).
class MetricsLog {
 public:
  explicit MetricsLog(std::string path) : path_(std::move(path)) {}
  void append(const nlohmann::json& row) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Files of a run directory.
struct RunDir {
  std::string root;
  std::string config() const { return root + "/config.json"; }
  std::string items_vocab() const { return root + "/items.vocab"; }
  std::string users_vocab() const { return root + "/users.vocab"; }
  std::string metrics() const { return root + "/metrics.jsonl"; }
  std::string summary() const { return root + "/summary.json"; }
  std::string log() const { return root + "/train.log"; }
  std::string checkpoints() const { return root + "/checkpoints"; }
  std::string best() const { return checkpoints() + "/best.pt"; }
  std::string final_model() const { return checkpoints() + "/final.pt"; }
};

class Trainer {
 public:
  /// `valid` may be null (no validation: no best checkpoint, no early stopping). The vocabulary
  /// files must already be in `run`.
  Trainer(const Config& config, const TrainingData& train, const SampleSet* valid, RunDir run,
          torch::Device device);

  /// Trains `model` (already on the device) from `state` to the end. Returns the final state.
  TrainState fit(Recommender& model, TrainState state = {});

 private:
  /// Scores the validation set, logs a row, updates early stopping and the best checkpoint.
  void validate(Recommender& model, torch::optim::Optimizer& optimizer, TrainState& state,
                double train_loss);
  nlohmann::json checkpoint_meta(const TrainState& state, const nlohmann::json& metrics,
                                 const std::string& path) const;

  const Config& config_;
  const TrainingData& train_;
  const SampleSet* valid_;
  RunDir run_;
  torch::Device device_;
  MetricsLog log_;
};

}  // namespace attnrec
