#include "attnrec/train/loss.hpp"

#include <cmath>

#include "attnrec/data/vocab.hpp"

namespace attnrec {

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
    : entry_(&loss_registry().at(kind)), log_q_(std::move(log_q)) {
  params_.smoothing = label_smoothing;
  // An item never drawn has log q = -inf; it can only be a positive, where -inf would turn
  // the loss into NaN. Clamping to a tiny probability keeps it finite.
  if (log_q_.defined()) log_q_ = log_q_.clamp_min(std::log(1e-30));
}

void TrainObjective::to(const torch::Device& device) {
  if (log_q_.defined()) log_q_ = log_q_.to(device);
}

namespace {

/// Next-item training's cases: the state after every valid position [N, D], the event that
/// follows it [N], and the flat indices [N] of those positions in [B x T].
struct NextItemCases {
  torch::Tensor states, positives, positions;
};

/// The event after every position [B, T]: the history shifted left, the sample's item after the
/// newest position.
torch::Tensor next_events(const Batch& batch) {
  const std::int64_t b = batch.size(), t = batch.history.size(1);
  auto next = torch::cat(
      {batch.history.narrow(1, 1, t - 1), torch::zeros_like(batch.item).unsqueeze(1)}, 1);
  const auto rows = torch::arange(b, batch.lengths.options());
  next.index_put_({rows, (batch.lengths - 1).clamp_min(0)}, batch.item);
  return next;
}

NextItemCases next_item_cases(Recommender& model, const Batch& batch) {
  const std::int64_t b = batch.size(), t = batch.history.size(1);
  const auto next = next_events(batch);
  NextItemCases c;
  c.positions = batch.mask.reshape({-1}).nonzero().squeeze(1);
  // Causal encoder: the output at position t is the user state after event t.
  c.states = model->encode(batch).keys.reshape({b * t, -1}).index_select(0, c.positions);
  c.positives = next.reshape({-1}).index_select(0, c.positions);
  return c;
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> next_item_logits(Recommender& model, const Batch& batch,
                                                         std::int64_t per_position) {
  TORCH_CHECK(model->factorised(), "next-item training needs a factorised model");
  const std::int64_t b = batch.size(), t = batch.history.size(1), k = per_position;
  TORCH_CHECK(
      batch.negatives.defined() && batch.negatives.size(0) == b && batch.negatives.size(1) >= t * k,
      "next-item negatives: expected [", b, ", >= ", t * k, "], got ", batch.negatives.sizes());
  const auto cases = next_item_cases(model, batch);
  const auto negatives =
      batch.negatives.narrow(1, 0, t * k).reshape({b * t, k}).index_select(0, cases.positions);
  const auto ids = torch::cat({cases.positives.unsqueeze(1), negatives}, 1);
  const auto [vectors, bias] = model->item_vectors(ids.reshape({-1}));
  const auto logits = (cases.states.unsqueeze(1) * vectors.view({ids.size(0), k + 1, -1})).sum(2) +
                      bias.view({ids.size(0), k + 1});
  return {logits, ids};
}

std::pair<torch::Tensor, torch::Tensor> training_states(Recommender& model, const Batch& batch,
                                                        bool next_item) {
  TORCH_CHECK(model->factorised(),
              "this loss needs a factorised model (head.type dot, attention.query self)");
  torch::Tensor states, positives;
  if (next_item) {
    auto cases = next_item_cases(model, batch);
    states = std::move(cases.states);
    positives = std::move(cases.positives);
  } else {
    states = model->user_states(model->encode(batch));
    positives = batch.item;
  }
  // Padding and OOV are never a class: such cases are dropped.
  const auto known = (positives >= Vocab::kReserved).nonzero().squeeze(1);
  if (known.size(0) == positives.size(0)) return {states, positives};
  return {states.index_select(0, known), positives.index_select(0, known)};
}

CandidateScores pool_scores(Recommender& model, const torch::Tensor& states,
                            const torch::Tensor& positives, const torch::Tensor& pool) {
  const auto [positive_vectors, positive_bias] = model->item_vectors(positives);
  const auto [pool_vectors, pool_bias] = model->item_vectors(pool);
  const auto positive = (states * positive_vectors).sum(1) + positive_bias;  // [M]
  const auto negatives = torch::addmm(pool_bias, states, pool_vectors.t());  // [M, N]
  CandidateScores s;
  s.logits = torch::cat({positive.unsqueeze(1), negatives}, 1);
  // A pool item equal to a row's positive is not a negative of that row.
  const auto collision = pool.unsqueeze(0) == positives.unsqueeze(1);  // [M, N]
  s.valid = torch::cat(
      {torch::ones_like(positives, torch::kBool).unsqueeze(1), collision.logical_not()}, 1);
  return s;
}

std::int64_t TrainObjective::cases(const Batch& batch) const {
  const std::int64_t b = batch.size();
  if (b == 0) return 0;
  const bool drops_unknown = entry_->full_catalogue || batch.pool.defined();
  if (!drops_unknown) {
    // BCE over the labelled samples, or a positive and its drawn negatives per sample (per
    // valid position with next-item training).
    if (next_item_ && batch.negatives.defined()) return batch.mask.sum().item<std::int64_t>();
    return b;
  }
  // training_states(): cases whose positive is padding or OOV are dropped.
  if (!next_item_) return (batch.item >= Vocab::kReserved).sum().item<std::int64_t>();
  return (batch.mask & (next_events(batch) >= Vocab::kReserved)).sum().item<std::int64_t>();
}

torch::Tensor TrainObjective::operator()(Recommender& model, const Batch& batch) const {
  const auto& entry = *entry_;
  if (entry.full_catalogue) {
    // Classes are the item ids kReserved..item_vocab-1 (never padding or OOV).
    const auto [states, positives] = training_states(model, batch, next_item_);
    const auto ids =
        torch::arange(Vocab::kReserved, model->options.item_vocab(), positives.options());
    const auto [table, bias] = model->item_vectors(ids);
    return full_softmax_loss(states, positives - Vocab::kReserved, table,
                             model->options.item_bias() ? bias : torch::Tensor(), softmax_block_);
  }
  auto params = params_;
  params.catalogue = model->options.item_vocab() - Vocab::kReserved;
  if (batch.pool.defined()) {
    const auto [states, positives] = training_states(model, batch, next_item_);
    auto scores = pool_scores(model, states, positives, batch.pool);
    if (log_q_.defined()) {
      scores.log_q = torch::cat({log_q_.index_select(0, positives).unsqueeze(1),
                                 log_q_.index_select(0, batch.pool)
                                     .unsqueeze(0)
                                     .expand({positives.size(0), batch.pool.size(0)})},
                                1);
    }
    return entry.candidate(scores, params);
  }
  if (!batch.negatives.defined()) {
    return bce_loss(model->forward(batch).logits, batch.label, params_.smoothing);
  }
  const auto [logits, ids] =
      next_item_ ? next_item_logits(model, batch, per_position_)
                 : std::make_pair(candidate_logits(model, batch), candidate_ids(batch));
  CandidateScores scores;
  scores.logits = logits;
  if (log_q_.defined()) scores.log_q = log_q_.index_select(0, ids.reshape({-1})).view_as(logits);
  return entry.candidate(scores, params);
}

}  // namespace attnrec
