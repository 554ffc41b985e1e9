#pragma once
/// \file FusedAdam: torch::optim::Adam with a one-pass CPU update and a multi-tensor update on
/// other devices.
///
/// Same algorithm, options and state (AdamParamState per parameter, so checkpoints save and
/// load unchanged and can move between FusedAdam, LazyAdam and torch::optim::Adam).
/// - Dense float32 CPU parameters are updated by one vectorised loop per parameter, split
///   across the intra-op threads, instead of torch's ~7 tensor passes and temporaries.
/// - Dense float32 parameters on other devices (CUDA) are updated together by LibTorch's
///   multi-tensor Adam (at::_fused_adam_, what torch.optim.Adam(fused=True) runs): a couple of
///   kernel launches per step for the whole model instead of ~7 per parameter, which is what a
///   small model's GPU step is bound by. Each parameter's step count is mirrored on its device
///   (float32, as PyTorch keeps it there) and the host count in AdamParamState stays the one a
///   checkpoint saves.
/// Results equal torch::optim::Adam's to float rounding (tested). Everything else (other
/// dtypes, AMSGrad, sparse gradients) goes through torch::optim::Adam::step unchanged.

#include <torch/torch.h>
#include <unordered_map>
#include <vector>

namespace attnrec {

/// Which update FusedAdam gives dense float32 parameters.
enum class DenseAdamKernel {
  automatic,    ///< CPU: the one-pass loop; other devices: multi-tensor
  multi_tensor  ///< multi-tensor on every device, CPU included where LibTorch has it (>= 2.4)
};

class FusedAdam : public torch::optim::Adam {
 public:
  FusedAdam(std::vector<torch::Tensor> params, torch::optim::AdamOptions options,
            DenseAdamKernel kernel = DenseAdamKernel::automatic);
  torch::Tensor step(LossClosure closure = nullptr) override;
  /// Parameter updates the multi-tensor kernel has made so far (one per parameter per step).
  std::int64_t multi_tensor_updates() const { return multi_tensor_updates_; }

 protected:
  /// The parameter's Adam state, created (step 0, zero moments) as torch::optim::Adam does.
  torch::optim::AdamParamState& state_of(const torch::Tensor& param);
  /// Updates the parameters the multi-tensor kernel takes, one launch per group and device;
  /// returns them.
  std::vector<torch::Tensor> step_multi_tensor();
  /// The loss of `closure` (with autograd on), or an undefined tensor without one.
  static torch::Tensor run_closure(const LossClosure& closure);
  /// torch::optim::Adam::step for every parameter but `done` (their gradients hidden meanwhile).
  void torch_step_except(const std::vector<torch::Tensor>& done);

 private:
  /// Updates the CPU parameters the one-pass loop takes; returns them.
  std::vector<torch::Tensor> step_cpu_loop();
  /// `param`'s step count on its device, equal to `host_step` once the pending increments
  /// (appended to `increments`) have run.
  torch::Tensor device_step(const torch::Tensor& param, std::int64_t host_step,
                            std::vector<torch::Tensor>& increments);

  struct DeviceStep {
    torch::Tensor value;        ///< float32 scalar on the parameter's device
    std::int64_t mirrors = -1;  ///< the host step count `value` holds
  };
  DenseAdamKernel kernel_;
  std::int64_t multi_tensor_updates_ = 0;
  std::unordered_map<const void*, DeviceStep> device_steps_;  ///< by parameter (TensorImpl)
};

}  // namespace attnrec
