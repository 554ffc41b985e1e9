#pragma once
/// \file Stop requests: SIGINT/SIGTERM (checkpoint, exit 130/143) and --stop-after-steps
/// (checkpoint, exit 0).

#include <cstdint>

#include "attnrec/io/run_dir.hpp"
#include "attnrec/io/train_state.hpp"

namespace attnrec {

class StopRequests {
 public:
  /// Installs the signal handlers; `stop_after_steps` 0 means no step limit.
  explicit StopRequests(std::int64_t stop_after_steps);
  /// A signal arrived, or the run has reached the step limit.
  bool pending(const TrainState& state) const;
  /// Acts on a pending stop once its checkpoint is written: throws Interrupted for a signal,
  /// logs where to resume for the step limit.
  void honour(const TrainState& state, std::int64_t batches_per_epoch, const RunDir& run) const;

 private:
  std::int64_t stop_after_steps_;
};

}  // namespace attnrec
