#include "attnrec/train/step.hpp"

#include <ATen/record_function.h>
#include <fmt/format.h>
#include <cmath>
#include <csignal>

#include "attnrec/util/error.hpp"
#include "attnrec/util/signals.hpp"
#include "attnrec/util/torch_compat.hpp"

namespace attnrec {

TrainStep::TrainStep(Recommender& model, torch::optim::Adam& optimizer, const TrainConfig& train,
                     GradientSync* sync, std::optional<TrainObjective> objective)
    : model_(model),
      optimizer_(optimizer),
      train_(train),
      sync_(sync),
      objective_(objective ? std::move(*objective)
                           : TrainObjective(train.loss, train.label_smoothing)) {}

torch::Tensor TrainStep::forward_loss(const Batch& b) {
  if (train_.precision == Precision::fp32) return objective_(model_, b);
  // bf16: autocast over the forward pass only; the loss (and so the backward pass's seed, the
  // gradients and Adam's moments) is float32.
  const compat::AutocastGuard autocast(b.history.device().type(), /*enabled=*/true,
                                       torch::kBFloat16);
  return objective_(model_, b).to(torch::kFloat32);
}

StepResult TrainStep::run(const Batch& b, double lr, std::int64_t global_step, std::int64_t epoch) {
  RECORD_USER_SCOPE("attnrec::train_step");  // a profiler's step boundary (free without one)
  for (auto& group : optimizer_.param_groups()) {
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
  }
  // Gradients are dropped rather than zeroed (PyTorch's zero_grad(set_to_none=True)): the
  // backward pass then hands its gradient tensors over instead of adding them into zeroed
  // ones, which for a dense embedding table saves two passes over it per step. Every
  // parameter takes part in every forward pass, so Adam still updates all of them.
  for (auto& p : model_->parameters()) p.mutable_grad() = torch::Tensor();
  StepResult r;
  r.samples = b.size();
  torch::Tensor loss;
  bool finite = true;
  if (!sync_) {
    loss = forward_loss(b);
    loss.backward();
  } else {
    // Data-parallel: this process's part of the batch may be empty (a last batch smaller than
    // the number of processes); its gradients then count as zeros.
    StepTotals local;
    local.cases = static_cast<double>(objective_.cases(b));
    if (local.cases > 0) {
      loss = forward_loss(b);
      loss.backward();
      const double value = loss.item<double>();
      finite = std::isfinite(value);
      local.loss_sum = finite ? value * local.cases : 0.0;
    }
    local.nonfinite = finite ? 0.0 : 1.0;
    local.samples = static_cast<double>(b.size());
    local.sigint = stop_signal() == SIGINT ? 1.0 : 0.0;
    local.sigterm = stop_signal() == SIGTERM ? 1.0 : 0.0;
    const StepTotals total = sync_->sync(model_, local);
    finite = total.nonfinite == 0.0;
    loss = torch::full({}, total.cases > 0 ? total.loss_sum / total.cases : 0.0,
                       torch::TensorOptions().dtype(torch::kFloat32).device(b.history.device()));
    r.samples = static_cast<std::int64_t>(total.samples);
    r.agreed_signal = total.sigterm > 0 ? SIGTERM : total.sigint > 0 ? SIGINT : 0;
  }
  double norm = 0.0;
  if (train_.grad_clip > 0) {
    norm = torch::nn::utils::clip_grad_norm_(model_->parameters(), train_.grad_clip);
  }
  // Checked before the update so a diverged step never reaches the weights (or a
  // checkpoint). This reads one value per step from the device.
  r.applied = (sync_ ? finite : torch::isfinite(loss).item<bool>()) && std::isfinite(norm);
  if (r.applied) {
    optimizer_.step();
    r.loss = loss.detach();
  } else if (train_.on_nonfinite == NonFinitePolicy::error) {
    throw Error(fmt::format(
        "non-finite training loss at global step {} (epoch {}); no checkpoint was written from "
        "it. Lower train.lr, set train.grad_clip, or set train.on_nonfinite to \"skip\"",
        global_step + 1, epoch + 1));
  }
  return r;
}

}  // namespace attnrec
