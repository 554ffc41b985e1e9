#pragma once
/// \file A data loader that prepares the next batches on a background thread.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "attnrec/data/batching.hpp"
#include "attnrec/data/negatives.hpp"

namespace attnrec {

/// Options of a DataLoader.
struct LoaderOptions {
  /// Samples per batch. Default: 256
  std::int64_t batch_size = 256;
  /// Shuffle every epoch. Default: false
  bool shuffle = false;
  /// Seed of the per-epoch permutation. Default: 0
  std::uint64_t seed = 0;
  /// Batches prepared ahead on a background thread (0: prepared in next()). Default: 2
  std::int64_t prefetch = 2;
  /// Page-locked host tensors (for CUDA training). Default: false
  bool pin_memory = false;
  /// Order samples by history length (stable; after any shuffle), so that each batch is padded
  /// only to lengths close to its own. For scoring, where the order does not matter (each
  /// Batch::index names its samples). Default: false
  bool by_length = false;
  /// Data-parallel training: this process takes part `shard` of `shards` of every batch (the
  /// rows [n x shard / shards, n x (shard + 1) / shards) of a batch of n); the batches, their
  /// order and their negatives stay those of one process. Default: 0 of 1 (the whole batch)
  int shard = 0;
  int shards = 1;

  /// Draws Batch::negatives for every batch (training with train.negatives); must outlive the
  /// loader. Default: none
  const TrainingNegatives* negatives = nullptr;

  LoaderOptions& with_negatives(const TrainingNegatives* v) {
    negatives = v;
    return *this;
  }
  LoaderOptions& with_batch_size(std::int64_t v) {
    batch_size = v;
    return *this;
  }
  LoaderOptions& with_shuffle(bool v) {
    shuffle = v;
    return *this;
  }
  LoaderOptions& with_seed(std::uint64_t v) {
    seed = v;
    return *this;
  }
  LoaderOptions& with_prefetch(std::int64_t v) {
    prefetch = v;
    return *this;
  }
  LoaderOptions& with_pin_memory(bool v) {
    pin_memory = v;
    return *this;
  }
  LoaderOptions& with_shard(int index, int count) {
    shard = index;
    shards = count;
    return *this;
  }
  LoaderOptions& with_by_length(bool v) {
    by_length = v;
    return *this;
  }
};

/// Iterates over a SampleSet in batches, epoch by epoch. The data position is (epoch, batch
/// index): start_epoch(e, k) yields exactly the batches an uninterrupted epoch e yields from
/// its k-th batch on. `set` must outlive the loader.
class DataLoader {
 public:
  DataLoader(const SampleSet& set, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  std::int64_t batches_per_epoch() const;
  /// Starts (or restarts) iteration of `epoch` at batch `first_batch`.
  void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0);
  /// The next batch of the current epoch, or nullopt at its end. Rethrows errors raised by
  /// the background thread.
  std::optional<Batch> next();
  /// Total seconds next() has waited for the background thread (0 when it keeps ahead).
  double wait_seconds() const { return wait_seconds_; }

 private:
  void stop();
  void produce(std::int64_t first_batch);
  Batch build(std::int64_t batch_number) const;

  const SampleSet& set_;
  LoaderOptions options_;
  std::vector<std::int64_t> order_;
  std::int64_t epoch_ = 0;
  std::int64_t next_batch_ = 0;  // used when prefetch == 0

  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<std::optional<Batch>> queue_;  // nullopt marks the end of the epoch
  bool stopping_ = false;
  std::exception_ptr error_;
  double wait_seconds_ = 0.0;
};

}  // namespace attnrec
