#pragma once
/// \file One optimisation step: learning rate, forward, loss, backward, gradient
/// synchronisation (data-parallel training), clipping, the non-finite policy, the update.
/// The loss itself is a TrainObjective (train/loss.hpp).

#include <torch/torch.h>
#include <cstdint>
#include <optional>

#include "attnrec/config/config.hpp"
#include "attnrec/data/batch.hpp"
#include "attnrec/model/recommender.hpp"
#include "attnrec/train/loss.hpp"
#include "attnrec/train/parallel.hpp"

namespace attnrec {

/// What a step did.
struct StepResult {
  torch::Tensor loss;        ///< detached, on the device (reading it synchronises)
  bool applied = true;       ///< false: a non-finite batch skipped (train.on_nonfinite = skip)
  std::int64_t samples = 0;  ///< of the whole batch (all processes)
  /// Data-parallel training: the stop signal the processes agreed on (SIGTERM when any process
  /// received one, else SIGINT when any did; 0: none). Always 0 for one process, whose
  /// StopRequests reads its own signal.
  int agreed_signal = 0;
};

class TrainStep {
 public:
  /// `sync` may be null (one process). `objective` defaults to the config's loss (without a
  /// log-q table).
  TrainStep(Recommender& model, torch::optim::Adam& optimizer, const TrainConfig& train,
            GradientSync* sync = nullptr, std::optional<TrainObjective> objective = std::nullopt);
  /// One step on `batch` (already on the model's device) at learning rate `lr`.
  /// `global_step`/`epoch` (0-based, before the step) name it in messages. A non-finite loss
  /// or gradient norm is checked before the update: it throws an Error (on_nonfinite = error)
  /// or skips the update (skip), so a diverged step never reaches the weights.
  StepResult run(const Batch& batch, double lr, std::int64_t global_step, std::int64_t epoch);

 private:
  /// The objective's loss on `batch`, in float32; under autocast when train.precision is bf16.
  torch::Tensor forward_loss(const Batch& batch);

  Recommender& model_;
  torch::optim::Adam& optimizer_;
  const TrainConfig& train_;
  GradientSync* sync_;
  TrainObjective objective_;
};

}  // namespace attnrec
