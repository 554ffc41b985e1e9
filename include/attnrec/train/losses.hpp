#pragma once
/// \file The training losses (`train.loss`) and their registry: one table, filled in one
/// function (src/train/losses.cpp), maps every LossKind to what computes it. Adding a loss
/// touches the enum and its description (config/choices) and that file.
///
/// What each optimises: `bce` the log-likelihood of clicks (logloss; calibrated probabilities,
/// AUC through them); `bpr` the probability that a positive outscores a negative (AUC, rank);
/// `sampled_softmax` the positive's share among its candidates (the top of the ranking:
/// HR/NDCG/MRR), with the log-q correction when negatives follow popularity; `gbce` BCE with
/// the positive's probability raised to beta (gSASRec), which removes BCE's overconfidence with
/// few negatives; `softmax` the positive's share among every item (full cross-entropy).

#include <torch/torch.h>
#include <cstdint>
#include <functional>
#include <map>

#include "attnrec/config/choices.hpp"

namespace attnrec {

/// Mean binary cross-entropy of `logits` against 0/1 `labels`, targets smoothed to
/// 1 - s/2 and s/2 by `smoothing` s.
torch::Tensor bce_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                       double smoothing = 0.0);

/// `logits` [B, 1 + K], column 0 the positive: mean BCE over every entry (positive target 1,
/// negatives 0, smoothed by `smoothing`). `valid` ([B, 1 + K] bool, may be undefined): the
/// entries that count (the mean is over them).
torch::Tensor candidate_bce_loss(const torch::Tensor& logits, double smoothing = 0.0,
                                 const torch::Tensor& valid = {});

/// `logits` [B, 1 + K]: mean over the B x K (valid) pairs of -log sigmoid(positive - negative).
torch::Tensor bpr_loss(const torch::Tensor& logits, const torch::Tensor& valid = {});

/// `logits` [B, 1 + K]: mean of -log softmax(logits - log_q)[0]. `log_q` ([B, 1 + K], the log
/// probability of sampling each candidate) may be undefined: no correction (uniform sampling,
/// where it is a constant and cancels). Entries not `valid` are left out of the softmax.
torch::Tensor sampled_softmax_loss(const torch::Tensor& logits, const torch::Tensor& log_q = {},
                                   const torch::Tensor& valid = {});

/// gSASRec's beta = alpha (t (1 - 1/alpha) + 1/alpha) = 1 - t (1 - alpha), where alpha =
/// negatives / (catalogue - 1) is the sampling rate (Petrov & Macdonald 2023, eq. 9).
double gbce_beta(std::int64_t negatives, std::int64_t catalogue, double t);

/// `logits` [B, 1 + K]: generalised BCE, the mean over the (valid) entries of
/// beta * softplus(-positive) and softplus(negative) (BCE with sigma(positive)^beta as the
/// positive's probability).
torch::Tensor gbce_loss(const torch::Tensor& logits, double beta, const torch::Tensor& valid = {});

/// logsumexp over items of `states` [M, D] x `table` [V, D]^T + `bias` [V] (bias may be
/// undefined), computed `block` items at a time by a custom autograd function that recomputes
/// each block in the backward pass. Peak memory beyond the inputs and their gradients:
/// 2 x M x block floats at most (one block's logits, in place), never M x V. When one block
/// holds the whole catalogue (block >= V) its probabilities are kept for the backward pass,
/// which then needs two matrix products instead of three.
torch::Tensor blocked_logsumexp(const torch::Tensor& states, const torch::Tensor& table,
                                const torch::Tensor& bias, std::int64_t block);

/// Full softmax cross-entropy: the mean over rows of logsumexp(all logits) - logit(target),
/// where logit(i) = states[m] . table[i] + bias[i]. `targets` [M] index rows of `table`. The
/// same blocked function subtracts the target's logit, so the table gets one gradient tensor
/// and the memory bound of blocked_logsumexp holds.
torch::Tensor full_softmax_loss(const torch::Tensor& states, const torch::Tensor& targets,
                                const torch::Tensor& table, const torch::Tensor& bias,
                                std::int64_t block);

/// A positive and its negatives scored against one state per row.
struct CandidateScores {
  torch::Tensor logits;  ///< [M, 1 + K], column 0 the positive
  torch::Tensor valid;   ///< [M, 1 + K] bool: false for a negative equal to the positive
                         ///< (a collision in a shared pool); undefined: all valid
  torch::Tensor log_q;   ///< [M, 1 + K] (or broadcastable) log sampling probability of each
                         ///< entry, for the log-q correction; undefined: none
};

/// What a loss reads besides the scores.
struct LossParams {
  double smoothing = 0.0;      ///< bce: label smoothing
  double gbce_t = 0.0;         ///< gbce: calibration t
  std::int64_t catalogue = 0;  ///< items a negative can be drawn from (gbce's sampling rate)
};

/// A candidate loss: the mean loss of `scores`.
using CandidateLoss = std::function<torch::Tensor(const CandidateScores&, const LossParams&)>;

/// One registered loss.
struct LossEntry {
  /// Computes the loss from candidate scores; empty for a full-catalogue loss.
  CandidateLoss candidate;
  /// Scores every item (full_softmax_loss) instead of drawn candidates.
  bool full_catalogue = false;
};

/// Every train.loss value and what computes it.
const std::map<LossKind, LossEntry>& loss_registry();

}  // namespace attnrec
