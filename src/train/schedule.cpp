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

}  // namespace attnrec
