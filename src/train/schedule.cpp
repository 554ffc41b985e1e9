#include "attnrec/train/schedule.hpp"

#include <algorithm>

namespace attnrec {

double scheduled_lr(LrSchedule schedule, double base_lr, std::int64_t step,
                    std::int64_t warmup_steps, std::int64_t total_steps) {
  if (schedule != LrSchedule::warmup_linear) return base_lr;
  if (step < warmup_steps) {
    return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  }
  const double remaining = static_cast<double>(total_steps - step);
  const double span = static_cast<double>(std::max<std::int64_t>(1, total_steps - warmup_steps));
  return base_lr * std::clamp(remaining / span, 0.0, 1.0);
}

TrainSchedule::TrainSchedule(const Config& config, std::int64_t batches_per_epoch,
                             bool has_validation, std::int64_t read_every)
    : config_(config),
      per_epoch_(batches_per_epoch),
      has_validation_(has_validation),
      read_every_(std::max<std::int64_t>(1, read_every)) {}

double TrainSchedule::lr(std::int64_t global_step) const {
  const auto& t = config_.train;
  return scheduled_lr(t.schedule, t.lr, global_step, t.warmup_steps, total_steps());
}

Due TrainSchedule::after_step(const TrainState& s, bool stop_pending) const {
  Due due;
  const auto every = config_.checkpoint.every_steps;
  due.checkpoint = every > 0 && s.global_step % every == 0;
  const auto validate_every = config_.train.validate_every_steps;
  // The end of an epoch validates anyway.
  due.validate = has_validation_ && validate_every > 0 && s.global_step % validate_every == 0 &&
                 s.step_in_epoch != per_epoch_;
  // The epoch's running loss is synchronised whenever it is shown or saved.
  due.read_loss = s.step_in_epoch % read_every_ == 0 || s.step_in_epoch == per_epoch_ ||
                  due.checkpoint || due.validate || stop_pending;
  return due;
}

}  // namespace attnrec
