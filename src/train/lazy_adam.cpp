#include "attnrec/train/lazy_adam.hpp"

#include <cmath>

namespace attnrec {

LazyAdam::LazyAdam(std::vector<torch::Tensor> params, torch::optim::AdamOptions options)
    : torch::optim::Adam(std::move(params), options) {
  TORCH_CHECK(options.weight_decay() == 0.0 && !options.amsgrad(),
              "LazyAdam: weight decay and AMSGrad are not supported with sparse gradients");
}

torch::Tensor LazyAdam::step(LossClosure closure) {
  // Adam::step skips parameters without a gradient: hide the sparse ones from it, let it update
  // the dense ones, then update the touched rows of the sparse ones here.
  struct Sparse {
    torch::Tensor param, grad;
    const torch::optim::AdamOptions* options;
  };
  std::vector<Sparse> sparse;
  for (auto& group : param_groups()) {
    const auto* options = static_cast<const torch::optim::AdamOptions*>(&group.options());
    for (auto& p : group.params()) {
      if (p.grad().defined() && p.grad().is_sparse()) {
        sparse.push_back({p, p.grad(), options});
        p.mutable_grad() = torch::Tensor();
      }
    }
  }
  torch::Tensor loss = torch::optim::Adam::step(closure);
  torch::NoGradGuard no_grad;
  for (auto& [p, grad, options] : sparse) {
    p.mutable_grad() = grad;
    const auto key = c10::guts::to_string(p.unsafeGetTensorImpl());  // Adam's own state key
    auto it = state_.find(key);
    if (it == state_.end()) {
      auto s = std::make_unique<torch::optim::AdamParamState>();
      s->step(0);
      s->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      s->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      it = state_.emplace(key, std::move(s)).first;
    }
    auto& state = static_cast<torch::optim::AdamParamState&>(*it->second);
    state.step(state.step() + 1);
    const auto g = grad.coalesce();
    const auto rows = g.indices()[0];
    const auto values = g.values();
    if (rows.numel() == 0) continue;
    const double beta1 = std::get<0>(options->betas()), beta2 = std::get<1>(options->betas());
    const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(state.step()));
    const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(state.step()));
    auto m = state.exp_avg().index_select(0, rows);
    auto v = state.exp_avg_sq().index_select(0, rows);
    m.mul_(beta1).add_(values, 1.0 - beta1);
    v.mul_(beta2).addcmul_(values, values, 1.0 - beta2);
    state.exp_avg().index_copy_(0, rows, m);
    state.exp_avg_sq().index_copy_(0, rows, v);
    // torch::optim::Adam's arithmetic: p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
    const auto denom = (v.sqrt() / std::sqrt(bc2)).add_(options->eps());
    p.index_add_(0, rows, (m / denom) * (-options->lr() / bc1));
  }
  return loss;
}

}  // namespace attnrec
