#include "attnrec/train/losses.hpp"

#include <cmath>
#include <limits>

namespace attnrec {

namespace {

void check_candidates(const torch::Tensor& logits) {
  TORCH_CHECK(logits.dim() == 2 && logits.size(1) >= 2,
              "candidate logits: expected [B, 1 + K], got ", logits.sizes());
}

/// The mean of `elementwise` over the `valid` entries (all when undefined).
torch::Tensor valid_mean(const torch::Tensor& elementwise, const torch::Tensor& valid) {
  if (!valid.defined()) return elementwise.mean();
  const auto weights = valid.to(elementwise.dtype());
  return (elementwise * weights).sum() / weights.sum();
}

}  // namespace

torch::Tensor bce_loss(const torch::Tensor& logits, const torch::Tensor& labels, double smoothing) {
  if (smoothing == 0.0) return torch::binary_cross_entropy_with_logits(logits, labels);
  return torch::binary_cross_entropy_with_logits(logits,
                                                 labels * (1.0 - smoothing) + smoothing / 2.0);
}

torch::Tensor candidate_bce_loss(const torch::Tensor& logits, double smoothing,
                                 const torch::Tensor& valid) {
  check_candidates(logits);
  auto labels = torch::zeros_like(logits);
  labels.select(1, 0).fill_(1.0);
  if (!valid.defined()) return bce_loss(logits, labels, smoothing);
  const auto targets = smoothing == 0.0 ? labels : labels * (1.0 - smoothing) + smoothing / 2.0;
  const auto elementwise =
      torch::binary_cross_entropy_with_logits(logits, targets, {}, {}, at::Reduction::None);
  return valid_mean(elementwise, valid);
}

torch::Tensor bpr_loss(const torch::Tensor& logits, const torch::Tensor& valid) {
  check_candidates(logits);
  const auto k = logits.size(1) - 1;
  const auto positive = logits.narrow(1, 0, 1);
  const auto negatives = logits.narrow(1, 1, k);
  // -log sigmoid(p - n) = softplus(n - p), the numerically stable form.
  const auto pairs = torch::softplus(negatives - positive);
  return valid_mean(pairs, valid.defined() ? valid.narrow(1, 1, k) : valid);
}

torch::Tensor sampled_softmax_loss(const torch::Tensor& logits, const torch::Tensor& log_q,
                                   const torch::Tensor& valid) {
  check_candidates(logits);
  // The correction (Bengio & Senecal 2008; Yi et al. 2019) applies to every candidate, the
  // positive included, as TensorFlow's sampled_softmax_loss does.
  auto corrected = log_q.defined() ? logits - log_q : logits;
  if (valid.defined()) {
    corrected = corrected.masked_fill(valid.logical_not(), -std::numeric_limits<float>::infinity());
  }
  return (torch::logsumexp(corrected, 1) - corrected.select(1, 0)).mean();
}

double gbce_beta(std::int64_t negatives, std::int64_t catalogue, double t) {
  const double alpha =
      catalogue > 1 ? std::min(1.0, static_cast<double>(negatives) / (catalogue - 1.0)) : 1.0;
  return 1.0 - t * (1.0 - alpha);
}

torch::Tensor gbce_loss(const torch::Tensor& logits, double beta, const torch::Tensor& valid) {
  check_candidates(logits);
  // -log sigmoid(s)^beta = beta softplus(-s); -log(1 - sigmoid(s)) = softplus(s).
  const auto k = logits.size(1) - 1;
  const auto elementwise = torch::cat(
      {torch::softplus(-logits.narrow(1, 0, 1)) * beta, torch::softplus(logits.narrow(1, 1, k))},
      1);
  return valid_mean(elementwise, valid);
}

namespace {

/// Per row, logsumexp over the items of states x table^T + bias, minus the logit of the row's
/// target when there are targets; one block of items at a time, with a backward pass that
/// recomputes each block instead of keeping [M, V] logits.
struct BlockedCrossEntropy : public torch::autograd::Function<BlockedCrossEntropy> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& states,
                               const torch::Tensor& table, const torch::Tensor& bias,
                               const torch::Tensor& targets, std::int64_t block) {
    const auto m = states.size(0), v = table.size(0);
    ctx->saved_data["block"] = block;
    if (v <= block) return one_block(ctx, states, table, bias, targets);
    auto running_max = torch::full({m}, -std::numeric_limits<float>::infinity(), states.options());
    auto running_sum = torch::zeros({m}, states.options());
    for (std::int64_t start = 0; start < v; start += block) {
      const auto n = std::min(block, v - start);
      auto logits = torch::addmm(bias.narrow(0, start, n), states, table.narrow(0, start, n).t());
      const auto new_max = torch::maximum(running_max, std::get<0>(logits.max(1)));
      running_sum = running_sum * (running_max - new_max).exp() +
                    logits.sub_(new_max.unsqueeze(1)).exp_().sum(1);
      running_max = new_max;
    }
    const auto lse = running_max + running_sum.log();
    ctx->save_for_backward({states, table, bias, targets, lse});
    return minus_targets(lse, states, table, bias, targets);
  }

  /// The catalogue in one block: its probabilities are kept for the backward pass (the block's
  /// M x V floats, which the caller allowed by choosing block >= V), saving the recomputation.
  static torch::Tensor one_block(torch::autograd::AutogradContext* ctx, const torch::Tensor& states,
                                 const torch::Tensor& table, const torch::Tensor& bias,
                                 const torch::Tensor& targets) {
    auto probabilities = torch::addmm(bias, states, table.t());
    const auto lse = torch::logsumexp(probabilities, 1);
    probabilities.sub_(lse.unsqueeze(1)).exp_();
    ctx->save_for_backward({states, table, bias, targets, lse});
    ctx->saved_data["probabilities"] = probabilities;
    return minus_targets(lse, states, table, bias, targets);
  }

  static torch::Tensor minus_targets(const torch::Tensor& lse, const torch::Tensor& states,
                                     const torch::Tensor& table, const torch::Tensor& bias,
                                     const torch::Tensor& targets) {
    if (targets.numel() == 0) return lse;
    return lse - ((states * table.index_select(0, targets)).sum(1) + bias.index_select(0, targets));
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &states = saved[0], &table = saved[1], &bias = saved[2], &targets = saved[3],
               &lse = saved[4];
    const auto block = ctx->saved_data["block"].toInt();
    const auto grad = grad_outputs[0];  // [M]
    const auto v = table.size(0);
    auto grad_states = torch::zeros_like(states);
    auto grad_table = torch::zeros_like(table);
    auto grad_bias = torch::zeros_like(bias);
    const bool kept = ctx->saved_data.count("probabilities") > 0;
    for (std::int64_t start = 0; start < v; start += block) {
      const auto n = std::min(block, v - start);
      const auto rows = table.narrow(0, start, n);
      // d lse / d logit = softmax; the block's probabilities, scaled by the incoming gradient.
      torch::Tensor p;
      if (kept) {
        p = ctx->saved_data["probabilities"].toTensor();
        ctx->saved_data.erase("probabilities");  // scaled in place; a second backward recomputes
      } else {
        p = torch::addmm(bias.narrow(0, start, n), states, rows.t());
        p.sub_(lse.unsqueeze(1)).exp_();
      }
      p.mul_(grad.unsqueeze(1));
      grad_states.addmm_(p, rows);
      grad_table.narrow(0, start, n).addmm_(p.t(), states);
      grad_bias.narrow(0, start, n).copy_(p.sum(0));
    }
    if (targets.numel() > 0) {  // - d logit(target): one row per case, added in place
      grad_states.sub_(table.index_select(0, targets) * grad.unsqueeze(1));
      grad_table.index_add_(0, targets, states * -grad.unsqueeze(1));
      grad_bias.index_add_(0, targets, -grad);
    }
    return {grad_states, grad_table, grad_bias, torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor blocked_cross_entropy(const torch::Tensor& states, const torch::Tensor& table,
                                    const torch::Tensor& bias, const torch::Tensor& targets,
                                    std::int64_t block) {
  TORCH_CHECK(states.dim() == 2 && table.dim() == 2 && states.size(1) == table.size(1),
              "blocked softmax: expected states [M, D] and table [V, D], got ", states.sizes(),
              " and ", table.sizes());
  TORCH_CHECK(block >= 1, "blocked softmax: expected block >= 1, got ", block);
  const auto b = bias.defined() ? bias : torch::zeros({table.size(0)}, table.options());
  TORCH_CHECK(b.dim() == 1 && b.size(0) == table.size(0), "blocked softmax: expected bias [",
              table.size(0), "], got ", b.sizes());
  TORCH_CHECK(!targets.defined() || targets.sizes() == states.sizes().slice(0, 1),
              "blocked softmax: expected targets [", states.size(0), "], got ", targets.sizes());
  // Function::apply takes defined tensors only: no targets travel as an empty one.
  const auto t = targets.defined() ? targets : torch::empty({0}, torch::kInt64);
  return BlockedCrossEntropy::apply(states, table, b, t, block);
}

}  // namespace

torch::Tensor blocked_logsumexp(const torch::Tensor& states, const torch::Tensor& table,
                                const torch::Tensor& bias, std::int64_t block) {
  return blocked_cross_entropy(states, table, bias, {}, block);
}

torch::Tensor full_softmax_loss(const torch::Tensor& states, const torch::Tensor& targets,
                                const torch::Tensor& table, const torch::Tensor& bias,
                                std::int64_t block) {
  TORCH_CHECK(targets.defined(), "full softmax: expected targets");
  return blocked_cross_entropy(states, table, bias, targets, block).mean();
}

namespace {

void register_losses(std::map<LossKind, LossEntry>& r) {
  r[LossKind::bce] = {[](const CandidateScores& s, const LossParams& p) {
    return candidate_bce_loss(s.logits, p.smoothing, s.valid);
  }};
  r[LossKind::bpr] = {
      [](const CandidateScores& s, const LossParams&) { return bpr_loss(s.logits, s.valid); }};
  r[LossKind::sampled_softmax] = {[](const CandidateScores& s, const LossParams&) {
    return sampled_softmax_loss(s.logits, s.log_q, s.valid);
  }};
  r[LossKind::gbce] = {[](const CandidateScores& s, const LossParams& p) {
    return gbce_loss(s.logits, gbce_beta(s.logits.size(1) - 1, p.catalogue, p.gbce_t), s.valid);
  }};
  r[LossKind::softmax] = {CandidateLoss(), /*full_catalogue=*/true};
}

}  // namespace

const std::map<LossKind, LossEntry>& loss_registry() {
  static const auto registry = [] {
    std::map<LossKind, LossEntry> r;
    register_losses(r);
    return r;
  }();
  return registry;
}

}  // namespace attnrec
