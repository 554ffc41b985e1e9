#pragma once
/// \file The training loop: Adam on binary cross-entropy with logits, LR schedule, gradient
/// clipping, validation with early stopping, the checkpoint policy and metrics.jsonl rows.

#include <torch/torch.h>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "attnrec/config/config.hpp"
#include "attnrec/data/dataset.hpp"
#include "attnrec/io/checkpoint.hpp"
#include "attnrec/io/metrics_log.hpp"
#include "attnrec/io/run_dir.hpp"
#include "attnrec/io/train_state.hpp"
#include "attnrec/model/recommender.hpp"

namespace attnrec {

/// Options of Trainer::fit() beyond the config.
struct FitOptions {
  /// Where training starts: the state restored by restore_training() for a resume. Default:
  /// a fresh start (epoch 0, early stopping from the config).
  std::optional<TrainState> start;
  /// The optimizer to step (restored for a resume). Default: make_optimizer() on the model.
  std::shared_ptr<torch::optim::Adam> optimizer;
  /// Stop (with a checkpoint, exit 0) after this global step; 0 = never. Default: 0
  std::int64_t stop_after_steps = 0;
  /// Called after every optimizer step with the step's (detached, on-device) loss; reading it
  /// synchronises with the device, so accumulate on the device. Default: none
  std::function<void(std::int64_t global_step, const torch::Tensor& loss)> on_step;
  /// Called at the end of every epoch with the seconds the trainer waited for the data loader's
  /// background thread during that epoch (0 when the loader keeps ahead). Default: none
  std::function<void(double seconds)> on_data_wait;
};

/// Adam as `train.optimizer` asks: FusedAdam (dense) or LazyAdam (sparse embedding rows). Both
/// keep torch's Adam state format, so checkpoints do not depend on the choice.
std::shared_ptr<torch::optim::Adam> make_optimizer(const TrainConfig& train, Recommender& model);

/// Restores `model`, `optimizer`, the generators and the train state from `checkpoint` (whose
/// verified header is `meta`) without writing anything. The checkpoint's position must fit the
/// run of `config` (`batches_per_epoch` batches per epoch); a CheckpointError otherwise. The
/// early-stopping patience comes from `config` (it may change on resume).
TrainState restore_training(const std::string& checkpoint, const CheckpointMeta& meta,
                            const Config& config, std::int64_t batches_per_epoch,
                            Recommender& model, torch::optim::Adam& optimizer);

class Trainer {
 public:
  /// `valid` may be null (no validation: no best checkpoint, no early stopping). The vocabulary
  /// files must already be in `run`.
  Trainer(const Config& config, const TrainingData& train, const SampleSet* valid, RunDir run,
          torch::Device device);

  /// Trains `model` to the end (or to a stop request). Returns the final state. Throws
  /// Interrupted after writing a checkpoint when SIGINT/SIGTERM arrives.
  TrainState fit(Recommender& model, const FitOptions& options = {});

 private:
  void validate(Recommender& model, torch::optim::Optimizer& optimizer, TrainState& state,
                double train_loss);
  void save(const std::string& path, const std::string& kind, Recommender& model,
            torch::optim::Optimizer& optimizer, const TrainState& state,
            const nlohmann::json& metrics) const;
  /// Periodic checkpoint step-N.pt, then the `latest` pointer, then pruning to keep_last.
  void save_periodic(Recommender& model, torch::optim::Optimizer& optimizer,
                     const TrainState& state) const;

  const Config& config_;
  const TrainingData& train_;
  const SampleSet* valid_;
  RunDir run_;
  torch::Device device_;
  MetricsLog log_;
};

}  // namespace attnrec
