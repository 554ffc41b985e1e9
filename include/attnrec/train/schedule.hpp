#pragma once
/// \file What is due when: the learning rate of every step, and after each step whether the
/// running loss is read back (logging), a validation or a periodic checkpoint is due.

#include <cstdint>
#include <string>

#include "attnrec/config/choices.hpp"
#include "attnrec/config/config.hpp"
#include "attnrec/io/train_state.hpp"

namespace attnrec {

/// Learning rate at `step` (0-based) of `total_steps` under `schedule` (constant |
/// warmup_linear: linear warm-up over `warmup_steps`, then linear decay to 0).
double scheduled_lr(LrSchedule schedule, double base_lr, std::int64_t step,
                    std::int64_t warmup_steps, std::int64_t total_steps);

/// What a finished step makes due.
struct Due {
  bool read_loss = false;   ///< synchronise the running loss (progress line, checkpoint)
  bool validate = false;    ///< a mid-epoch validation (train.validate_every_steps)
  bool checkpoint = false;  ///< a periodic checkpoint (checkpoint.every_steps)
};

/// The schedule of one run.
class TrainSchedule {
 public:
  /// `read_every`: steps between loss read-backs (a device synchronisation), at most
  /// train.log_every_steps.
  TrainSchedule(const Config& config, std::int64_t batches_per_epoch, bool has_validation,
                std::int64_t read_every);
  /// The learning rate of the step after `global_step` steps.
  double lr(std::int64_t global_step) const;
  /// What is due after the step that brought the run to `state`; `stop_pending`: a stop was
  /// requested (the loss is then read for the checkpoint).
  Due after_step(const TrainState& state, bool stop_pending) const;
  std::int64_t batches_per_epoch() const { return per_epoch_; }
  std::int64_t total_steps() const { return per_epoch_ * config_.train.epochs; }

 private:
  const Config& config_;
  std::int64_t per_epoch_;
  bool has_validation_;
  std::int64_t read_every_;
};

}  // namespace attnrec
