#include "attnrec/train/loss.hpp"

#include <cmath>

namespace attnrec {

torch::Tensor bce_loss(const torch::Tensor& logits, const torch::Tensor& labels, double smoothing) {
  if (smoothing == 0.0) return torch::binary_cross_entropy_with_logits(logits, labels);
  return torch::binary_cross_entropy_with_logits(logits,
                                                 labels * (1.0 - smoothing) + smoothing / 2.0);
}

torch::Tensor candidate_bce_loss(const torch::Tensor& logits, double smoothing) {
  TORCH_CHECK(logits.dim() == 2 && logits.size(1) >= 2,
              "candidate logits: expected [B, 1 + K], got ", logits.sizes());
  auto labels = torch::zeros_like(logits);
  labels.select(1, 0).fill_(1.0);
  return bce_loss(logits, labels, smoothing);
}

torch::Tensor bpr_loss(const torch::Tensor& logits) {
  TORCH_CHECK(logits.dim() == 2 && logits.size(1) >= 2,
              "candidate logits: expected [B, 1 + K], got ", logits.sizes());
  const auto positive = logits.narrow(1, 0, 1);
  const auto negatives = logits.narrow(1, 1, logits.size(1) - 1);
  // -log sigmoid(p - n) = softplus(n - p), the numerically stable form.
  return torch::softplus(negatives - positive).mean();
}

torch::Tensor sampled_softmax_loss(const torch::Tensor& logits, const torch::Tensor& log_q) {
  TORCH_CHECK(logits.dim() == 2 && logits.size(1) >= 2,
              "candidate logits: expected [B, 1 + K], got ", logits.sizes());
  // The correction (Bengio & Senecal 2008; Yi et al. 2019) applies to every candidate, the
  // positive included, as TensorFlow's sampled_softmax_loss does.
  const auto corrected = log_q.defined() ? logits - log_q : logits;
  return (torch::logsumexp(corrected, 1) - corrected.select(1, 0)).mean();
}

torch::Tensor candidate_ids(const Batch& batch) {
  TORCH_CHECK(batch.item.defined(), "candidate logits: the batch has no positive items");
  return torch::cat({batch.item.unsqueeze(1), batch.negatives}, 1);
}

torch::Tensor candidate_logits(Recommender& model, const Batch& batch) {
  TORCH_CHECK(batch.negatives.defined() && batch.negatives.dim() == 2 &&
                  batch.negatives.size(0) == batch.size(),
              "candidate logits: expected negatives [", batch.size(), ", K]");
  const auto b = batch.size();
  const auto c = batch.negatives.size(1) + 1;
  const auto candidates = candidate_ids(batch);  // [B, C]
  const auto encoded = model->encode(batch);
  const auto rows = torch::arange(b, batch.item.options()).repeat_interleave(c);
  return model->score(encoded.select_rows(rows), candidates.reshape({-1})).logits.view({b, c});
}

TrainObjective::TrainObjective(LossKind kind, double label_smoothing, torch::Tensor log_q)
    : kind_(kind), smoothing_(label_smoothing), log_q_(std::move(log_q)) {
  // An item never drawn has log q = -inf; it can only be a positive, where -inf would turn
  // the loss into NaN. Clamping to a tiny probability keeps it finite.
  if (log_q_.defined()) log_q_ = log_q_.clamp_min(std::log(1e-30));
}

void TrainObjective::to(const torch::Device& device) {
  if (log_q_.defined()) log_q_ = log_q_.to(device);
}

std::pair<torch::Tensor, torch::Tensor> next_item_logits(Recommender& model, const Batch& batch,
                                                         std::int64_t per_position) {
  TORCH_CHECK(model->factorised(), "next-item training needs a factorised model");
  const std::int64_t b = batch.size(), t = batch.history.size(1), k = per_position;
  TORCH_CHECK(
      batch.negatives.defined() && batch.negatives.size(0) == b && batch.negatives.size(1) >= t * k,
      "next-item negatives: expected [", b, ", >= ", t * k, "], got ", batch.negatives.sizes());
  // The next event of every position: the history shifted left, the item after the newest.
  auto next = torch::cat(
      {batch.history.narrow(1, 1, t - 1), torch::zeros_like(batch.item).unsqueeze(1)}, 1);
  const auto rows = torch::arange(b, batch.lengths.options());
  next.index_put_({rows, (batch.lengths - 1).clamp_min(0)}, batch.item);
  const auto valid = batch.mask.reshape({-1}).nonzero().squeeze(1);  // [N] flat positions
  const auto negatives = batch.negatives.narrow(1, 0, t * k).reshape({b * t, k});
  const auto ids = torch::cat({next.reshape({-1, 1}), negatives}, 1).index_select(0, valid);
  // Causal encoder: the output at position t is the user state after event t.
  const auto states = model->encode(batch).keys.reshape({b * t, -1}).index_select(0, valid);
  const auto [vectors, bias] = model->item_vectors(ids.reshape({-1}));
  const auto logits = (states.unsqueeze(1) * vectors.view({ids.size(0), k + 1, -1})).sum(2) +
                      bias.view({ids.size(0), k + 1});
  return {logits, ids};
}

torch::Tensor TrainObjective::loss_of(const torch::Tensor& logits, const torch::Tensor& ids) const {
  switch (kind_) {
    case LossKind::bce:
      return candidate_bce_loss(logits, smoothing_);
    case LossKind::bpr:
      return bpr_loss(logits);
    case LossKind::sampled_softmax: {
      torch::Tensor log_q;
      if (log_q_.defined()) log_q = log_q_.index_select(0, ids.reshape({-1})).view_as(logits);
      return sampled_softmax_loss(logits, log_q);
    }
  }
  TORCH_CHECK(false, "train loss: unknown kind");
}

torch::Tensor TrainObjective::operator()(Recommender& model, const Batch& batch) const {
  if (!batch.negatives.defined()) {
    return bce_loss(model->forward(batch).logits, batch.label, smoothing_);
  }
  if (per_position_ > 0) {
    const auto [logits, ids] = next_item_logits(model, batch, per_position_);
    return loss_of(logits, ids);
  }
  return loss_of(candidate_logits(model, batch), candidate_ids(batch));
}

}  // namespace attnrec
