#include "attnrec/data/loader.hpp"
#include "attnrec/data/batching.hpp"

#include <algorithm>

#include "attnrec/util/error.hpp"

namespace attnrec {

DataLoader::DataLoader(const SampleSet& set, LoaderOptions options) : set_(set), options_(options) {
  if (options_.batch_size < 1) throw UsageError("batch size must be >= 1");
  if (options_.shards < 1 || options_.shard < 0 || options_.shard >= options_.shards) {
    throw UsageError("data shard must be in [0, shards)");
  }
}

DataLoader::~DataLoader() { stop(); }

std::int64_t DataLoader::batches_per_epoch() const {
  return (set_.size() + options_.batch_size - 1) / options_.batch_size;
}

Batch DataLoader::build(std::int64_t batch_number) const {
  const std::int64_t global_begin = batch_number * options_.batch_size;
  const std::int64_t global_n = std::min(options_.batch_size, set_.size() - global_begin);
  // This process's rows of the batch (all of them for one process).
  const std::int64_t begin = global_begin + global_n * options_.shard / options_.shards;
  const std::int64_t n = global_begin + global_n * (options_.shard + 1) / options_.shards - begin;
  Batch batch = make_batch(set_, order_.data() + begin, n, options_.pin_memory);
  if (options_.negatives && options_.negatives->shared_pool() > 0) {
    batch.pool = torch::empty(
        {options_.negatives->shared_pool()},
        torch::TensorOptions().dtype(torch::kInt64).pinned_memory(options_.pin_memory));
    options_.negatives->draw_pool(epoch_, batch_number, batch.pool.data_ptr<std::int64_t>());
  } else if (options_.negatives) {
    // Drawn here, on the background thread, so the step never waits for them.
    const auto k = options_.negatives->per_positive();
    batch.negatives = torch::empty(
        {n, k}, torch::TensorOptions().dtype(torch::kInt64).pinned_memory(options_.pin_memory));
    options_.negatives->draw(epoch_, order_.data() + begin, n,
                             batch.negatives.data_ptr<std::int64_t>());
  }
  return batch;
}

void DataLoader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  not_full_.notify_all();
  if (worker_.joinable()) worker_.join();
  queue_.clear();
  stopping_ = false;
  error_ = nullptr;
}

void DataLoader::start_epoch(std::int64_t epoch, std::int64_t first_batch) {
  stop();
  epoch_ = epoch;
  order_ = epoch_order(set_.size(), options_.shuffle, options_.seed, epoch);
  if (options_.by_length) {
    std::stable_sort(order_.begin(), order_.end(), [&](std::int64_t a, std::int64_t b) {
      return set_.history_length(a) < set_.history_length(b);
    });
  }
  next_batch_ = std::clamp<std::int64_t>(first_batch, 0, batches_per_epoch());
  if (options_.prefetch > 0) worker_ = std::thread([this, first = next_batch_] { produce(first); });
}

void DataLoader::produce(std::int64_t first_batch) {
  try {
    for (std::int64_t k = first_batch; k < batches_per_epoch(); ++k) {
      Batch batch = build(k);
      std::unique_lock<std::mutex> lock(mutex_);
      not_full_.wait(lock, [&] {
        return stopping_ || static_cast<std::int64_t>(queue_.size()) < options_.prefetch;
      });
      if (stopping_) return;
      queue_.emplace_back(std::move(batch));
      not_empty_.notify_one();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  queue_.emplace_back(std::nullopt);
  not_empty_.notify_one();
}

std::optional<Batch> DataLoader::next() {
  if (options_.prefetch == 0) {
    if (next_batch_ >= batches_per_epoch()) return std::nullopt;
    return build(next_batch_++);
  }
  if (!worker_.joinable()) return std::nullopt;  // start_epoch() was not called
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  not_empty_.wait(lock, [&] { return !queue_.empty(); });
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!queue_.front()) {
    // End of epoch: the marker stays queued so further calls keep returning nullopt.
    if (error_) std::rethrow_exception(error_);
    return std::nullopt;
  }
  std::optional<Batch> item = std::move(queue_.front());
  queue_.pop_front();
  ++next_batch_;
  not_full_.notify_one();
  return item;
}

}  // namespace attnrec
