#pragma once
/// \file Batching: building Batch tensors from a SampleSet, and the order of an epoch.

#include <cstdint>
#include <vector>

#include "attnrec/data/batch.hpp"
#include "attnrec/data/dataset.hpp"

namespace attnrec {

/// Builds the batch of samples `indices[0..n)` of `set`. `pin_memory` allocates page-locked
/// host tensors so a later copy to CUDA can overlap with compute.
Batch make_batch(const SampleSet& set, const std::int64_t* indices, std::int64_t n,
                 bool pin_memory = false);

/// The order in which an epoch visits the samples: identity, or a permutation determined only
/// by (seed, epoch), so that any epoch can be replayed exactly.
std::vector<std::int64_t> epoch_order(std::int64_t n, bool shuffle, std::uint64_t seed,
                                      std::int64_t epoch);

}  // namespace attnrec
