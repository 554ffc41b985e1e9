#pragma once
/// \file FusedAdam: torch::optim::Adam with a one-pass CPU update.
///
/// Same algorithm, options and state (AdamParamState per parameter, so checkpoints save and
/// load unchanged and can move between FusedAdam, LazyAdam and torch::optim::Adam). Dense
/// float32 CPU parameters are updated by one vectorised loop per parameter, split across the
/// intra-op threads, instead of torch's ~7 tensor passes and temporaries; results equal
/// torch::optim::Adam's to float rounding (tested). Everything else (CUDA tensors, other
/// dtypes, AMSGrad, sparse gradients) goes through torch::optim::Adam::step unchanged.

#include <torch/torch.h>
#include <vector>

namespace attnrec {

class FusedAdam : public torch::optim::Adam {
 public:
  FusedAdam(std::vector<torch::Tensor> params, torch::optim::AdamOptions options);
  torch::Tensor step(LossClosure closure = nullptr) override;

 protected:
  /// The parameter's Adam state, created (step 0, zero moments) as torch::optim::Adam does.
  torch::optim::AdamParamState& state_of(const torch::Tensor& param);
};

}  // namespace attnrec
