#include "attnrec/train/lazy_adam.hpp"

#include <ATen/Parallel.h>
#include <cmath>

#include "../kernels/adam_kernels.hpp"

namespace attnrec {

LazyAdam::LazyAdam(std::vector<torch::Tensor> params, torch::optim::AdamOptions options,
                   DenseAdamKernel kernel)
    : FusedAdam(std::move(params), options, kernel) {
  TORCH_CHECK(!options.amsgrad(), "LazyAdam: AMSGrad is not supported with sparse gradients");
}

torch::Tensor LazyAdam::step(LossClosure closure) {
  const torch::Tensor loss = run_closure(closure);
  torch::NoGradGuard no_grad;
  // Dense CPU parameters get torch's own Adam arithmetic, so they match torch::optim::Adam bit
  // for bit (weight decay included): with sparse tables they are the small part of the model,
  // so the one-pass loop would gain little. Off the CPU they take the multi-tensor kernel (which
  // leaves sparse gradients alone): a GPU step of a small model is bound by kernel launches, ~7
  // per parameter in torch's Adam. The sparse tables' touched rows are updated here, after.
  struct Sparse {
    torch::Tensor param;
    const torch::optim::AdamOptions* options;
  };
  std::vector<Sparse> sparse;
  for (auto& group : param_groups()) {
    const auto* options = static_cast<const torch::optim::AdamOptions*>(&group.options());
    for (auto& p : group.params()) {
      if (p.grad().defined() && p.grad().is_sparse()) sparse.push_back({p, options});
    }
  }
  std::vector<torch::Tensor> done = step_multi_tensor();
  for (const auto& s : sparse) done.push_back(s.param);
  torch_step_except(done);
  for (auto& [p, options] : sparse) {
    const auto& grad = p.grad();
    auto& state = state_of(p);
    state.step(state.step() + 1);
    const auto g = grad.coalesce();  // unique rows, duplicates summed
    const auto rows = g.indices()[0].contiguous();
    const auto values = g.values().contiguous();
    if (rows.numel() == 0) continue;
    const double beta1 = std::get<0>(options->betas()), beta2 = std::get<1>(options->betas());
    const auto step = static_cast<double>(state.step());
    if (!(p.device().is_cpu() && p.scalar_type() == torch::kFloat32 && p.is_contiguous() &&
          p.dim() == 2 && values.scalar_type() == torch::kFloat32)) {
      // CUDA and other dtypes: the same row formula with tensor operations.
      const double bc1 = 1.0 - std::pow(beta1, step), bc2 = 1.0 - std::pow(beta2, step);
      auto g = values;
      if (options->weight_decay() != 0.0) {
        g = values + p.index_select(0, rows) * options->weight_decay();  // lazy L2: touched rows
      }
      auto m = state.exp_avg().index_select(0, rows);
      auto v = state.exp_avg_sq().index_select(0, rows);
      m.mul_(beta1).add_(g, 1.0 - beta1);
      v.mul_(beta2).addcmul_(g, g, 1.0 - beta2);
      state.exp_avg().index_copy_(0, rows, m);
      state.exp_avg_sq().index_copy_(0, rows, v);
      const auto denom = (v.sqrt() / std::sqrt(bc2)).add_(options->eps());
      p.index_add_(0, rows, (m / denom) * (-options->lr() / bc1));
      continue;
    }
    // Lazy L2: the kernel adds weight_decay x row to the gradient of the touched rows only.
    const auto s = kernels::adam_scalars(options->lr(), beta1, beta2, options->eps(),
                                         options->weight_decay(), step);
    // Adam's arithmetic on each touched row (rows are unique after coalesce, so the row
    // updates are independent and may run in parallel).
    const std::int64_t width = p.size(1);
    const std::int64_t* row = rows.data_ptr<std::int64_t>();
    const float* value = values.data_ptr<float>();
    float* param = p.data_ptr<float>();
    float* m = state.exp_avg().data_ptr<float>();
    float* v = state.exp_avg_sq().data_ptr<float>();
    at::parallel_for(0, rows.numel(), 256, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t k = begin; k < end; ++k) {
        const std::int64_t offset = row[k] * width;
        kernels::adam_update(param + offset, value + k * width, m + offset, v + offset, width, s);
      }
    });
  }
  return loss;
}

}  // namespace attnrec
