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
  /// The batch's mean loss (drawn negatives when the batch has them, else its labels).
  torch::Tensor operator()(Recommender& model, const Batch& batch) const;
  /// Moves the log-q table to `device`.
  void to(const torch::Device& device);

 private:
  LossKind kind_;
  double smoothing_;
  torch::Tensor log_q_;
};

}  // namespace attnrec
