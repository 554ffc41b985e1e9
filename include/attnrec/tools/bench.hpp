#pragma once
/// \file `attnrec bench`: throughput of the data pipeline, training and inference on a
/// synthetic workload generated in-process, plus peak RSS. The same workload is implemented in
/// Python by scripts/bench_vs_pytorch.py; both follow the data specification below.
///
/// Data (every sample independent): topic k ~ U{0..99}; history length L ~ U{5..50}; each
/// history item is, with probability 0.8, an item of topic k (ids 1 + k + 100 j, j uniform over
/// the ids below the vocabulary size), else uniform in [1, vocab); the candidate is, with
/// probability 0.5, a topic-k item with label ~ Bernoulli(0.9), else a uniform item with label
/// ~ Bernoulli(0.1). Id 0 is padding.
///
/// Model: embedding (dim 64, padding 0) shared by history and candidate -> LSTM 64 -> additive
/// target attention (hidden 64, masked softmax) -> Linear over [context, candidate] -> 1 logit;
/// BCE-with-logits, Adam lr 1e-3, batch 256, one epoch.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "attnrec/config/config.hpp"
#include "attnrec/data/dataset.hpp"

namespace attnrec {

struct BenchWorkload {
  std::string name;
  std::int64_t samples = 200000;
  std::int64_t vocab = 50000;
  std::int64_t batch_size = 256;
  std::uint64_t seed = 1;
};

/// W1 (vocabulary 50,000) or W2 (2,000,000): LSTM + additive target attention; T1 (W1's
/// distribution over 12,000 items): a SASRec-style model (2 causal transformer blocks, the
/// newest position's state, dot head).
/// Throws UsageError for other names.
BenchWorkload bench_workload(const std::string& name);

/// `n` samples of the workload's distribution (label, item, history; no users).
SampleSet make_bench_samples(const BenchWorkload& workload, std::int64_t n, std::uint64_t seed);

/// The config of the benchmark model for `workload`.
Config bench_config(const BenchWorkload& workload);

struct BenchOptions {
  std::string workload = "W1";
  /// Samples to train on (0: the workload's). Default: 0
  std::int64_t samples = 0;
  /// `--set KEY=VALUE` overrides of the benchmark model's config (e.g. train.threads=1,
  /// train.optimizer=lazy_adam). Default: none
  std::vector<std::string> overrides;
  /// After training, write this many fresh samples of the workload to a TSV file and evaluate
  /// the trained model on it as `attnrec evaluate` does (read, score, metrics); 0 skips it.
  /// Default: 0
  std::int64_t eval_samples = 0;
  /// After training, rank this many fresh histories against every vocabulary item (the full
  /// protocol of `attnrec evaluate --ranking full`), by matrix product when the model
  /// factorises; 0 skips it. Default: 0
  std::int64_t rank_users = 0;
  /// Also write Chrome traces of LibTorch's profiler to this folder (empty: none):
  /// train.json, 20 training steps from step 21 on (fewer in short runs), and infer.json, 20
  /// inference batches of fresh samples after the timed inference. The training figures of a
  /// profiled run include the profiler's own cost. Default: none
  std::string profile;
};

/// Runs the benchmark; returns {workload, samples, threads, data_samples_per_s,
/// train_samples_per_s, infer_samples_per_s, loader_wait_s, peak_rss_mb, loss_segments, ...}.
nlohmann::json run_bench(const BenchOptions& options);

}  // namespace attnrec
