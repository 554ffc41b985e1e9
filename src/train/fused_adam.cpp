#include "attnrec/train/fused_adam.hpp"

#include <ATen/Parallel.h>
#include <cmath>

#include "../kernels/adam_kernels.hpp"
#include "attnrec/util/torch_compat.hpp"

namespace attnrec {

namespace {

bool fusable(const torch::Tensor& p, const torch::optim::AdamOptions& options) {
  const auto& g = p.grad();
  return !options.amsgrad() && p.device().is_cpu() && p.scalar_type() == torch::kFloat32 &&
         p.is_contiguous() && g.defined() && !g.is_sparse() && g.device().is_cpu() &&
         g.scalar_type() == torch::kFloat32 && g.is_contiguous() && g.sizes() == p.sizes();
}

/// The fused kernel reads the moments through raw CPU pointers: they must be float32 CPU
/// tensors of the parameter's layout (a state left on another device would be read as host
/// memory).
bool fusable_state(const torch::optim::AdamParamState& s, const torch::Tensor& p) {
  for (const auto& t : {s.exp_avg(), s.exp_avg_sq()}) {
    if (!t.defined() || !t.device().is_cpu() || t.scalar_type() != torch::kFloat32 ||
        !t.is_contiguous() || t.sizes() != p.sizes()) {
      return false;
    }
  }
  return true;
}

}  // namespace

FusedAdam::FusedAdam(std::vector<torch::Tensor> params, torch::optim::AdamOptions options)
    : torch::optim::Adam(std::move(params), options) {}

torch::optim::AdamParamState& FusedAdam::state_of(const torch::Tensor& param) {
  const auto key = compat::optimizer_state_key(param);  // Adam's own state key
  auto it = state_.find(key);
  if (it == state_.end()) {
    auto s = std::make_unique<torch::optim::AdamParamState>();
    s->step(0);
    s->exp_avg(torch::zeros_like(param, torch::MemoryFormat::Preserve));
    s->exp_avg_sq(torch::zeros_like(param, torch::MemoryFormat::Preserve));
    it = state_.emplace(key, std::move(s)).first;
  }
  return static_cast<torch::optim::AdamParamState&>(*it->second);
}

torch::Tensor FusedAdam::step(LossClosure closure) {
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  torch::NoGradGuard no_grad;
  // Update the fusable parameters here; hide their gradients so that Adam::step (run for the
  // rest) skips them, then put the gradients back.
  std::vector<torch::Tensor> done;
  for (auto& group : param_groups()) {
    const auto& options = static_cast<const torch::optim::AdamOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!fusable(p, options)) continue;
      auto& state = state_of(p);
      if (!fusable_state(state, p)) continue;  // Adam::step below handles it (or says why)
      state.step(state.step() + 1);
      const auto s = kernels::adam_scalars(
          options.lr(), std::get<0>(options.betas()), std::get<1>(options.betas()), options.eps(),
          options.weight_decay(), static_cast<double>(state.step()));
      float* param = p.data_ptr<float>();
      const float* grad = p.grad().data_ptr<float>();
      float* m = state.exp_avg().data_ptr<float>();
      float* v = state.exp_avg_sq().data_ptr<float>();
      // Element-wise, so any split gives the same result (exact resume is unaffected).
      at::parallel_for(0, p.numel(), 1 << 15, [&](std::int64_t begin, std::int64_t end) {
        kernels::adam_update(param + begin, grad + begin, m + begin, v + begin, end - begin, s);
      });
      done.push_back(p);
    }
  }
  std::vector<torch::Tensor> grads;
  grads.reserve(done.size());
  for (auto& p : done) {
    grads.push_back(p.grad());
    p.mutable_grad() = torch::Tensor();
  }
  torch::optim::Adam::step(nullptr);
  for (std::size_t i = 0; i < done.size(); ++i) done[i].mutable_grad() = grads[i];
  return loss;
}

}  // namespace attnrec
