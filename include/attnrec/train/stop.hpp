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
  /// Data-parallel training: from now on a signal counts only once every process has agreed
  /// on it (agree()), so that all of them stop after the same step.
  /// `writes`: whether this process writes the checkpoint (rank 0) or only names it.
  void use_agreed_signals(bool writes) {
    agreed_only_ = true;
    writes_ = writes;
  }
  /// The signal the processes agreed on after the last step (StepResult::agreed_signal).
  void agree(int signal) { agreed_ = signal; }
  /// A signal arrived, or the run has reached the step limit.
  bool pending(const TrainState& state) const;
  /// Acts on a pending stop once its checkpoint is written: throws Interrupted for a signal,
  /// logs where to resume for the step limit.
  void honour(const TrainState& state, std::int64_t batches_per_epoch, const RunDir& run) const;

 private:
  int signal() const;

  std::int64_t stop_after_steps_;
  bool agreed_only_ = false;
  bool writes_ = true;
  int agreed_ = 0;
};

}  // namespace attnrec
