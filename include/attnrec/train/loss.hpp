#pragma once
/// \file Training losses (`train.loss`). Pointwise BCE scores each labelled sample; with drawn
/// negatives every loss scores a positive and its K negatives against one history, encoded
/// once (candidate_logits), as the ranking evaluation does.
///
/// What each optimises: `bce` the log-likelihood of clicks (logloss; calibrated probabilities,
/// AUC through them); `bpr` the probability that a positive outscores a negative (AUC, rank);
/// `sampled_softmax` the positive's share among its candidates (the top of the ranking:
/// HR/NDCG/MRR), with the log-q correction when negatives follow popularity.

#include <torch/torch.h>

#include "attnrec/config/choices.hpp"
#include "attnrec/data/batch.hpp"
#include "attnrec/model/recommender.hpp"

namespace attnrec {

/// Mean binary cross-entropy of `logits` against 0/1 `labels`, targets smoothed to
/// 1 - s/2 and s/2 by `smoothing` s.
torch::Tensor bce_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                       double smoothing = 0.0);

/// `logits` [B, 1 + K], column 0 the positive: mean BCE over every entry (positive target 1,
/// negatives 0, smoothed by `smoothing`).
torch::Tensor candidate_bce_loss(const torch::Tensor& logits, double smoothing = 0.0);

/// `logits` [B, 1 + K]: mean over the B x K pairs of -log sigmoid(positive - negative).
torch::Tensor bpr_loss(const torch::Tensor& logits);

/// `logits` [B, 1 + K]: mean of -log softmax(logits - log_q)[0]. `log_q` ([B, 1 + K], the log
/// probability of sampling each candidate) may be undefined: no correction (uniform sampling,
/// where it is a constant and cancels).
torch::Tensor sampled_softmax_loss(const torch::Tensor& logits, const torch::Tensor& log_q = {});

/// [B, 1 + K] candidate ids: `batch.item` (the positives) then `batch.negatives`.
torch::Tensor candidate_ids(const Batch& batch);

/// Logits [B, 1 + K] of each history against its positive (`batch.item`) and its drawn
/// negatives (`batch.negatives` [B, K]); the history is encoded once.
torch::Tensor candidate_logits(Recommender& model, const Batch& batch);

/// The loss a TrainStep minimises.
class TrainObjective {
 public:
  /// `log_q`: log sampling probability per item id (sampled_softmax with popularity negatives;
  /// undefined otherwise).
  TrainObjective(LossKind kind, double label_smoothing, torch::Tensor log_q = {});
  /// Next-item training: every valid position t of a history is a training case, its positive
  /// the event after t (history[t + 1], or the sample's item at the newest position) and its
  /// negatives `per_position` of the batch's drawn ones ([B, T_max x per_position], position t
  /// taking columns [t x per_position, (t + 1) x per_position)). Needs a factorised model.
  void train_next_item(std::int64_t per_position) { per_position_ = per_position; }
  /// The batch's mean loss (drawn negatives when the batch has them, else its labels).
  torch::Tensor operator()(Recommender& model, const Batch& batch) const;
  /// Moves the log-q table to `device`.
  void to(const torch::Device& device);

 private:
  /// The loss of candidate logits [N, 1 + K] whose ids are `ids` [N, 1 + K].
  torch::Tensor loss_of(const torch::Tensor& logits, const torch::Tensor& ids) const;

  LossKind kind_;
  double smoothing_;
  torch::Tensor log_q_;
  std::int64_t per_position_ = 0;  ///< next-item training: negatives per position (0: off)
};

/// Next-item training's logits: [N, 1 + K] for the N valid positions of the batch, column 0
/// the next event, and their candidate ids [N, 1 + K]. `per_position` = K.
std::pair<torch::Tensor, torch::Tensor> next_item_logits(Recommender& model, const Batch& batch,
                                                         std::int64_t per_position);

}  // namespace attnrec
