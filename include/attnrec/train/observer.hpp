#pragma once
/// \file Observers of the training loop (benchmarks, reports): called at fixed points, they
/// watch and never change the run.

#include <torch/torch.h>

#include "attnrec/io/train_state.hpp"

namespace attnrec {

class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  /// After every applied optimizer step (`state` already counts it), with the step's detached,
  /// on-device loss; reading it synchronises with the device, so accumulate on the device.
  virtual void after_step(const TrainState& state, const torch::Tensor& loss) {
    (void)state;
    (void)loss;
  }
  /// After every complete epoch, with the seconds the loop waited for the data loader's
  /// background thread during it (0 when the loader keeps ahead).
  virtual void after_epoch(const TrainState& state, double data_wait_seconds) {
    (void)state;
    (void)data_wait_seconds;
  }
};

}  // namespace attnrec
