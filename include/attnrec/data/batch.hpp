#pragma once
/// \file A batch: padded history tensors with a boolean mask (tensors only; batching.hpp builds
/// them from samples), what the model's forward pass takes.

#include <torch/torch.h>
#include <cstdint>

namespace attnrec {

/// One batch. Histories are right-padded with Vocab::kPad to the longest history in the batch
/// (at least 1 column, so an all-empty batch still has a valid shape); `mask` is true at real
/// positions.
struct Batch {
  torch::Tensor history;  ///< [B, T] int64
  torch::Tensor mask;     ///< [B, T] bool
  torch::Tensor lengths;  ///< [B] int64, always on the host
  torch::Tensor item;     ///< [B] int64 (undefined when the data has no item column)
  torch::Tensor user;     ///< [B] int64 (undefined when the data has no user column)
  torch::Tensor label;    ///< [B] float (undefined when the data has no label column)
  torch::Tensor index;    ///< [B] int64 sample indices into the SampleSet
  /// [B, K] int64 negatives drawn for each (positive) sample, training with train.negatives
  /// only; `item` holds the positives then.
  torch::Tensor negatives;
  /// [N] int64: one pool of negatives drawn for the whole batch (train.negatives.shared_pool),
  /// shared by every sample and position; undefined otherwise.
  torch::Tensor pool;

  std::int64_t size() const { return history.size(0); }
  /// Copies every tensor except `lengths` to `device` (non-blocking; the host tensors are pinned
  /// for CUDA).
  Batch to(const torch::Device& device) const;
};

}  // namespace attnrec
