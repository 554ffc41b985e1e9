#pragma once
/// \file The learning-rate schedule.

#include <cstdint>
#include <string>

#include "attnrec/config/choices.hpp"

namespace attnrec {

/// Learning rate at `step` (0-based) of `total_steps` under `schedule` (constant |
/// warmup_linear: linear warm-up over `warmup_steps`, then linear decay to 0).
double scheduled_lr(LrSchedule schedule, double base_lr, std::int64_t step,
                    std::int64_t warmup_steps, std::int64_t total_steps);

}  // namespace attnrec
