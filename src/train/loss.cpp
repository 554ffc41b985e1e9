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

torch::Tensor TrainObjective::operator()(Recommender& model, const Batch& batch) const {
  if (!batch.negatives.defined()) {
    return bce_loss(model->forward(batch).logits, batch.label, smoothing_);
  }
  const auto logits = candidate_logits(model, batch);
  switch (kind_) {
    case LossKind::bce:
      return candidate_bce_loss(logits, smoothing_);
    case LossKind::bpr:
      return bpr_loss(logits);
    case LossKind::sampled_softmax: {
      torch::Tensor log_q;
      if (log_q_.defined()) {
        log_q = log_q_.index_select(0, candidate_ids(batch).reshape({-1})).view_as(logits);
      }
      return sampled_softmax_loss(logits, log_q);
    }
  }
  TORCH_CHECK(false, "train loss: unknown kind");
}

}  // namespace attnrec
