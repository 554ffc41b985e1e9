#pragma once
/// \file The training objective: which scores a loss (train/losses.hpp) is computed on.
/// Pointwise BCE scores each labelled sample; with drawn negatives every loss scores a positive
/// and its K negatives against one history, encoded once (candidate_logits), as the ranking
/// evaluation does; a shared pool or the whole catalogue is scored as one matrix product.

#include <torch/torch.h>

#include "attnrec/config/choices.hpp"
#include "attnrec/data/batch.hpp"
#include "attnrec/model/recommender.hpp"
#include "attnrec/train/losses.hpp"

namespace attnrec {

/// [B, 1 + K] candidate ids: `batch.item` (the positives) then `batch.negatives`.
torch::Tensor candidate_ids(const Batch& batch);

/// Logits [B, 1 + K] of each history against its positive (`batch.item`) and its drawn
/// negatives (`batch.negatives` [B, K]); the history is encoded once.
torch::Tensor candidate_logits(Recommender& model, const Batch& batch);

/// The loss a TrainStep minimises. Which loss computes what is the registry's (losses.hpp);
/// this class picks the scores it needs:
/// - a full-catalogue loss (softmax): the user states against every item, in blocks;
/// - a batch with a shared pool (Batch::pool): the states against the pool, one matrix product
///   [M, d] x [d, N], a pool item equal to a row's positive masked out of that row;
/// - drawn negatives per sample (per position with next-item training);
/// - otherwise the batch's labelled samples (BCE).
class TrainObjective {
 public:
  /// `log_q`: log sampling probability per item id (sampled_softmax with popularity negatives;
  /// undefined otherwise).
  TrainObjective(LossKind kind, double label_smoothing, torch::Tensor log_q = {});
  /// Next-item training: every valid position t of a history is a training case, its positive
  /// the event after t (history[t + 1], or the sample's item at the newest position) and its
  /// negatives `per_position` of the batch's drawn ones ([B, T_max x per_position], position t
  /// taking columns [t x per_position, (t + 1) x per_position)), or the batch's shared pool,
  /// or the whole catalogue. Needs a factorised model.
  void train_next_item(std::int64_t per_position) {
    next_item_ = true;
    per_position_ = per_position;
  }
  /// gbce's calibration parameter t in [0, 1].
  void set_gbce_t(double t) { params_.gbce_t = t; }
  /// softmax: items per block of the full-catalogue softmax.
  void set_softmax_block(std::int64_t items) { softmax_block_ = items; }
  /// The batch's mean loss.
  torch::Tensor operator()(Recommender& model, const Batch& batch) const;
  /// The number of terms the batch's mean loss averages (its cases: samples, positions, or
  /// positions with a known positive): data-parallel training weights each process's gradient
  /// by it. With a shared pool, pool items equal to a case's positive are masked, which this
  /// count ignores (the weighting is then exact only up to those collisions).
  std::int64_t cases(const Batch& batch) const;
  /// Moves the log-q table to `device`.
  void to(const torch::Device& device);

 private:
  const LossEntry* entry_;  ///< the registry's entry of the loss, looked up once
  LossParams params_;
  torch::Tensor log_q_;
  bool next_item_ = false;
  std::int64_t per_position_ = 0;  ///< next-item training: negatives per position
  std::int64_t softmax_block_ = 8192;
};

/// The training cases of a factorised model: user states [M, D] and their positives [M].
/// Next-item training: every valid position and the event after it; otherwise the newest
/// position of each sample and its item. Cases whose positive is padding or OOV are dropped.
std::pair<torch::Tensor, torch::Tensor> training_states(Recommender& model, const Batch& batch,
                                                        bool next_item);

/// The scores of `states` [M, D] against their `positives` [M] (column 0) and the shared
/// `pool` [N] (columns 1..N): one matrix product for the pool; `valid` false where a pool item
/// equals the row's positive.
CandidateScores pool_scores(Recommender& model, const torch::Tensor& states,
                            const torch::Tensor& positives, const torch::Tensor& pool);

/// Next-item training's logits: [N, 1 + K] for the N valid positions of the batch, column 0
/// the next event, and their candidate ids [N, 1 + K]. `per_position` = K.
std::pair<torch::Tensor, torch::Tensor> next_item_logits(Recommender& model, const Batch& batch,
                                                         std::int64_t per_position);

}  // namespace attnrec
