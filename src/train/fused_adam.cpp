#include "attnrec/train/fused_adam.hpp"

#include <ATen/Parallel.h>
#include <algorithm>
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

/// The multi-tensor kernel's inputs: dense float32 parameter, gradient and moments, all
/// contiguous on the parameter's device.
bool multi_tensor_fusable(const torch::Tensor& p, const torch::optim::AdamOptions& options) {
  const auto& g = p.grad();
  return !options.amsgrad() && p.scalar_type() == torch::kFloat32 && p.is_contiguous() &&
         g.defined() && !g.is_sparse() && g.device() == p.device() &&
         g.scalar_type() == torch::kFloat32 && g.is_contiguous() && g.sizes() == p.sizes();
}

bool multi_tensor_state(const torch::optim::AdamParamState& s, const torch::Tensor& p) {
  for (const auto& t : {s.exp_avg(), s.exp_avg_sq()}) {
    if (!t.defined() || t.device() != p.device() || t.scalar_type() != torch::kFloat32 ||
        !t.is_contiguous() || t.sizes() != p.sizes()) {
      return false;
    }
  }
  return true;
}

}  // namespace

FusedAdam::FusedAdam(std::vector<torch::Tensor> params, torch::optim::AdamOptions options,
                     DenseAdamKernel kernel)
    : torch::optim::Adam(std::move(params), options), kernel_(kernel) {}

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

std::vector<torch::Tensor> FusedAdam::step_cpu_loop() {
  std::vector<torch::Tensor> done;
  if (kernel_ != DenseAdamKernel::automatic) return done;
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
  return done;
}

torch::Tensor FusedAdam::device_step(const torch::Tensor& param, std::int64_t host_step,
                                     std::vector<torch::Tensor>& increments) {
  auto& cached = device_steps_[param.unsafeGetTensorImpl()];
  if (cached.value.defined() && cached.value.device() == param.device() &&
      cached.mirrors == host_step - 1) {
    increments.push_back(cached.value);  // the usual case: one launch for all, no copy
  } else {
    // First step, or the host count moved without this optimizer (a checkpoint was loaded).
    cached.value =
        torch::full({}, static_cast<double>(host_step),
                    torch::TensorOptions().dtype(torch::kFloat32).device(param.device()));
  }
  cached.mirrors = host_step;
  return cached.value;
}

std::vector<torch::Tensor> FusedAdam::step_multi_tensor() {
  std::vector<torch::Tensor> done;
  for (auto& group : param_groups()) {
    const auto& options = static_cast<const torch::optim::AdamOptions&>(group.options());
    // One list per device: the kernel takes tensors of one device.
    struct Lists {
      std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
    };
    std::vector<std::pair<torch::Device, Lists>> by_device;
    std::vector<torch::Tensor> increments;
    for (auto& p : group.params()) {
      if (kernel_ == DenseAdamKernel::automatic && p.device().is_cpu()) continue;
      if (!multi_tensor_fusable(p, options)) continue;
      auto& state = state_of(p);
      if (!multi_tensor_state(state, p)) continue;  // Adam::step handles it (or says why)
      state.step(state.step() + 1);
      auto it = std::find_if(by_device.begin(), by_device.end(),
                             [&](const auto& entry) { return entry.first == p.device(); });
      if (it == by_device.end()) it = by_device.insert(by_device.end(), {p.device(), Lists{}});
      auto& l = it->second;
      l.params.push_back(p);
      l.grads.push_back(p.grad());
      l.exp_avgs.push_back(state.exp_avg());
      l.exp_avg_sqs.push_back(state.exp_avg_sq());
      l.steps.push_back(device_step(p, state.step(), increments));
    }
    if (!increments.empty()) at::_foreach_add_(increments, 1.0);
    for (auto& [device, l] : by_device) {
      at::_fused_adam_(l.params, l.grads, l.exp_avgs, l.exp_avg_sqs, /*max_exp_avg_sqs=*/{},
                       l.steps, options.lr(), std::get<0>(options.betas()),
                       std::get<1>(options.betas()), options.weight_decay(), options.eps(),
                       /*amsgrad=*/false, /*maximize=*/false);
      done.insert(done.end(), l.params.begin(), l.params.end());
      multi_tensor_updates_ += static_cast<std::int64_t>(l.params.size());
    }
  }
  return done;
}

torch::Tensor FusedAdam::run_closure(const LossClosure& closure) {
  if (!closure) return {};
  torch::AutoGradMode enable_grad(true);
  return closure();
}

torch::Tensor FusedAdam::step(LossClosure closure) {
  const torch::Tensor loss = run_closure(closure);
  torch::NoGradGuard no_grad;
  // Update the fusable parameters here; hide their gradients so that Adam::step (run for the
  // rest) skips them, then put the gradients back.
  std::vector<torch::Tensor> done = step_cpu_loop();
  const auto multi = step_multi_tensor();
  done.insert(done.end(), multi.begin(), multi.end());
  torch_step_except(done);
  return loss;
}

void FusedAdam::torch_step_except(const std::vector<torch::Tensor>& done) {
  std::vector<torch::Tensor> grads;
  grads.reserve(done.size());
  for (auto p : done) {
    grads.push_back(p.grad());
    p.mutable_grad() = torch::Tensor();
  }
  torch::optim::Adam::step(nullptr);
  for (std::size_t i = 0; i < done.size(); ++i) {
    auto p = done[i];
    p.mutable_grad() = grads[i];
  }
}

}  // namespace attnrec
