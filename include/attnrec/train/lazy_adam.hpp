#pragma once
/// \file LazyAdam: Adam (FusedAdam) that also accepts sparse gradients (embedding tables built
/// with sparse(true)) and updates only the rows a step touched, as PyTorch's SparseAdam does.
///
/// Semantics differ from dense Adam for embedding rows: a row's moments and value change only
/// in steps whose batch contains it (dense Adam keeps moving every row by its momentum and
/// decays every row's moments each step). Bias correction uses the table's step count, as in
/// SparseAdam. Weight decay is lazy too (TensorFlow's LazyAdam): a touched row's gradient gets
/// weight_decay x row, untouched rows do not decay. Dense parameters get torch::optim::Adam's
/// own update on the CPU (bit for bit), weight decay included, and FusedAdam's multi-tensor
/// update on other devices. The state is Adam's
/// own (AdamParamState per parameter), so checkpoints save and load it unchanged.

#include <torch/torch.h>
#include <vector>

#include "attnrec/train/fused_adam.hpp"

namespace attnrec {

class LazyAdam : public FusedAdam {
 public:
  LazyAdam(std::vector<torch::Tensor> params, torch::optim::AdamOptions options,
           DenseAdamKernel kernel = DenseAdamKernel::automatic);
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace attnrec
