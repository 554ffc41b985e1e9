#pragma once
/// \file A portable random source. The standard `<random>` distributions are
/// implementation-defined, so anything that must be byte-identical on every machine (data
/// generation, shuffling) draws from this class, built on the fully specified mt19937_64.

#include <cstdint>
#include <random>
#include <vector>

namespace attnrec {

/// Deterministic, platform-independent random numbers.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}

  /// Derives an independent stream from a seed and a stream id (e.g. the epoch number).
  static std::uint64_t mix(std::uint64_t seed, std::uint64_t stream);

  std::uint64_t next_u64() { return engine_(); }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  /// Uniform integer in [0, n); unbiased (rejection sampling). `n` must be > 0.
  std::uint64_t uniform_int(std::uint64_t n);
  /// Standard normal (Box-Muller).
  double normal();
  /// Index drawn from the cumulative weights `cdf` (non-decreasing, last > 0).
  std::size_t categorical(const std::vector<double>& cdf);
  /// Fisher-Yates shuffle of `v`.
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) {
      const std::size_t j = static_cast<std::size_t>(uniform_int(i));
      std::swap(v[i - 1], v[j]);
    }
  }

 private:
  std::mt19937_64 engine_;
};

}  // namespace attnrec
