#pragma once
/// \file What the training loop needs from data-parallel training, without c10d: the
/// implementation (process group, buckets, checks) is dist/data_parallel.hpp. With several
/// processes each step's batch is split between them (data/loader.hpp's shards), every process
/// computes the gradients of its part, and sync() makes every process hold the gradients of the
/// whole batch before the optimizer step, so that N processes take the steps one would.

#include <torch/torch.h>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "attnrec/model/recommender.hpp"

namespace attnrec {

/// Per-step values that travel with the gradients: a process's own in sync()'s argument, the
/// sums over all processes in its result.
struct StepTotals {
  double cases = 0.0;      ///< terms of the mean loss (its denominator)
  double loss_sum = 0.0;   ///< mean loss x cases
  double nonfinite = 0.0;  ///< 1 when this process's loss is not finite
  double samples = 0.0;    ///< samples of the batch
  double sigint = 0.0;     ///< 1 when this process received SIGINT
  double sigterm = 0.0;    ///< 1 when this process received SIGTERM
};

/// Runs between backward and the optimizer step.
class GradientSync {
 public:
  virtual ~GradientSync() = default;
  /// Replaces every parameter's gradient (of the mean loss over this process's `local.cases`)
  /// by the gradient of the mean loss over all processes' cases, and returns the sums of the
  /// step values. Undefined gradients (an empty part of a batch) count as zeros.
  virtual StepTotals sync(Recommender& model, const StepTotals& local) = 0;
};

/// A named 64-bit digest that every process must agree on (config, data, vocabulary, binary).
using Fingerprint = std::pair<std::string, std::uint64_t>;

/// Data-parallel training over several processes.
class Parallel : public GradientSync {
 public:
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  /// Every process must pass the same values; a ConfigError naming the first that differs and
  /// the ranks that disagree with rank 0 otherwise (raised on every rank).
  virtual void check_same(const std::vector<Fingerprint>& fingerprints) = 0;
  /// Before the first step: copies rank 0's parameters and buffers to every process, then checks
  /// (a digest compared across ranks) that parameters and optimizer state agree; fixes the
  /// gradient bucket plan.
  virtual void align(Recommender& model, torch::optim::Optimizer& optimizer) = 0;
  /// {"world_size": N, "bucket_plan": [elements per dense bucket...], "sparse": [names]}, for
  /// the checkpoint meta.
  virtual nlohmann::json describe() const = 0;
  /// What synchronisation cost so far: {"sync_steps", "sync_seconds" (time inside sync():
  /// the copies, the allreduces, and waiting for slower processes)}, for the summary and
  /// benchmarks.
  virtual nlohmann::json statistics() const = 0;
};

}  // namespace attnrec
