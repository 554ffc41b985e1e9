#pragma once
/// \file Batches: padded history tensors with a boolean mask, built from a SampleSet.

#include <cstdint>
#include <torch/torch.h>
#include <vector>

#include "attnrec/data/dataset.hpp"

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

  std::int64_t size() const { return history.size(0); }
  /// Copies every tensor except `lengths` to `device` (non-blocking; the host tensors are pinned for CUDA).
  Batch to(const torch::Device& device) const;
};

/// Builds the batch of samples `indices[0..n)` of `set`. `pin_memory` allocates page-locked
/// host tensors so a later copy to CUDA can overlap with compute.
Batch make_batch(const SampleSet& set, const std::int64_t* indices, std::int64_t n,
                 bool pin_memory = false);

/// The order in which an epoch visits the samples: identity, or a permutation determined only
/// by (seed, epoch), so that any epoch can be replayed exactly.
std::vector<std::int64_t> epoch_order(std::int64_t n, bool shuffle, std::uint64_t seed,
                                      std::int64_t epoch);

}  // namespace attnrec
