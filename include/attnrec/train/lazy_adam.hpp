#pragma once
/// \file LazyAdam: torch::optim::Adam that also accepts sparse gradients (embedding tables built
/// with sparse(true)) and updates only the rows a step touched, as PyTorch's SparseAdam does.
///
/// Semantics differ from dense Adam for embedding rows: a row's moments and value change only
/// in steps whose batch contains it (dense Adam keeps moving every row by its momentum and
/// decays every row's moments each step). Bias correction uses the table's step count, as in
/// SparseAdam. Dense parameters get exactly torch::optim::Adam's update. The state is Adam's
/// own (AdamParamState per parameter), so checkpoints save and load it unchanged.

#include <torch/torch.h>
#include <vector>

namespace attnrec {

class LazyAdam : public torch::optim::Adam {
 public:
  LazyAdam(std::vector<torch::Tensor> params, torch::optim::AdamOptions options);
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace attnrec
