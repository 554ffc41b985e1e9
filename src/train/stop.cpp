#include "attnrec/train/stop.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "attnrec/util/error.hpp"
#include "attnrec/util/signals.hpp"

namespace attnrec {

StopRequests::StopRequests(std::int64_t stop_after_steps) : stop_after_steps_(stop_after_steps) {
  install_stop_handlers();
}

int StopRequests::signal() const { return agreed_only_ ? agreed_ : stop_signal(); }

bool StopRequests::pending(const TrainState& state) const {
  return signal() != 0 || (stop_after_steps_ > 0 && state.global_step >= stop_after_steps_);
}

void StopRequests::honour(const TrainState& state, std::int64_t batches_per_epoch,
                          const RunDir& run) const {
  const int sig = signal();
  const std::string where =
      fmt::format("global step {} (epoch {}, step {} of {})", state.global_step, state.epoch + 1,
                  state.step_in_epoch, batches_per_epoch);
  if (sig) {
    spdlog::warn(
        "{} received: stopped at {}; checkpoint {}; resume with: attnrec train --resume {}",
        sig == 15 ? "SIGTERM" : "SIGINT", where, writes_ ? run.latest() : "written by rank 0",
        run.root);
    throw Interrupted(
        fmt::format("interrupted at {}; resume with: attnrec train --resume {}", where, run.root),
        sig);
  }
  spdlog::info("stopped after {} as requested; resume with: attnrec train --resume {}", where,
               run.root);
}

}  // namespace attnrec
