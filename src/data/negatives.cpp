#include "attnrec/data/negatives.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <limits>

#include "attnrec/data/vocab.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/rng.hpp"

namespace attnrec {

namespace {

// A counter-based stream (SplitMix64): each (seed, epoch, sample) pair has its own, so a draw
// does not depend on which batch or thread asks for it.
std::uint64_t next(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// Uniform in [0, n) by Lemire's multiply-shift; the bias (n / 2^64) is far below anything a
/// vocabulary size can show.
std::uint64_t below(std::uint64_t& state, std::uint64_t n) {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next(state)) * n) >> 64);
}

double unit(std::uint64_t& state) { return static_cast<double>(next(state) >> 11) * 0x1.0p-53; }

void add_items(std::vector<std::int32_t>& to, const SampleSet& set, std::int64_t i) {
  for (auto k = set.history_offsets[i]; k < set.history_offsets[i + 1]; ++k) {
    to.push_back(set.history[k]);
  }
  // A label-0 row's candidate is a negative, not an interaction.
  if (set.has_items && (!set.has_labels || set.labels[i] == 1)) to.push_back(set.items[i]);
}

// The first real item id (0 is padding, 1 OOV).
constexpr std::int32_t kFirstItem = Vocab::kOov + 1;

// Rejection draws before the deterministic scan takes over (a user who saw nearly every item).
constexpr int kMaxRejections = 64;

}  // namespace

TrainingNegatives::TrainingNegatives(const SampleSet& train, std::int64_t item_vocab,
                                     TrainingNegativesOptions options,
                                     const std::vector<const SampleSet*>& exclude)
    : train_(train), item_vocab_(item_vocab), options_(options) {
  if (!train.has_items) {
    throw ConfigError("train.negatives: " + train.source +
                      " has no item column; drawn negatives replace a sample's candidate item");
  }
  if (item_vocab_ <= kFirstItem + 1) {
    throw DataError(
        fmt::format("{}: train.negatives needs at least 2 items in the vocabulary, got {}",
                    train.source, std::max<std::int64_t>(0, item_vocab_ - kFirstItem)));
  }
  if (train.has_users) {
    std::int32_t users = 0;
    for (const auto u : train.users) users = std::max(users, u + 1);
    user_items_.resize(static_cast<std::size_t>(users));
    const auto collect = [&](const SampleSet& set) {
      if (!set.has_users) return;
      for (std::int64_t i = 0; i < set.size(); ++i) {
        const auto u = set.users[i];
        // OOV users of other files share no identity: only their own row excludes.
        if (u < kFirstItem || u >= users) continue;
        add_items(user_items_[u], set, i);
      }
    };
    collect(train);
    for (const auto* set : exclude) collect(*set);
    for (auto& items : user_items_) {
      std::sort(items.begin(), items.end());
      items.erase(std::unique(items.begin(), items.end()), items.end());
    }
  }
  if (options_.distribution == NegativeDistribution::popularity) {
    weights_.assign(static_cast<std::size_t>(item_vocab_), 0.0);
    for (std::int64_t i = 0; i < train.size(); ++i) {
      if (train.has_labels && train.labels[i] != 1) continue;
      const auto item = train.items[i];
      if (item >= kFirstItem && item < item_vocab_) weights_[item] += 1.0;
    }
    double total = 0.0;
    for (auto& w : weights_) {
      w = w > 0 ? std::pow(w, options_.exponent) : 0.0;
      total += w;
    }
    if (!(total > 0)) throw DataError(train.source + ": no positive samples to count popularity");
    for (auto& w : weights_) w /= total;
    // Vose's alias method: O(1) per draw.
    const auto n = static_cast<std::size_t>(item_vocab_);
    alias_probability_.assign(n, 0.0);
    alias_.assign(n, 0);
    std::vector<std::int32_t> small, large;
    std::vector<double> scaled(n);
    for (std::size_t i = 0; i < n; ++i) {
      scaled[i] = weights_[i] * static_cast<double>(n);
      (scaled[i] < 1.0 ? small : large).push_back(static_cast<std::int32_t>(i));
    }
    while (!small.empty() && !large.empty()) {
      const auto s = small.back(), l = large.back();
      small.pop_back();
      alias_probability_[s] = scaled[s];
      alias_[s] = l;
      scaled[l] = (scaled[l] + scaled[s]) - 1.0;
      if (scaled[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    for (const auto i : large) alias_probability_[i] = 1.0;
    for (const auto i : small) alias_probability_[i] = 1.0;  // rounding leftovers
  }
}

std::int32_t TrainingNegatives::propose(std::uint64_t& state) const {
  if (alias_.empty()) {
    const auto span = static_cast<std::uint64_t>(item_vocab_ - kFirstItem);
    return static_cast<std::int32_t>(kFirstItem + below(state, span));
  }
  const auto column = static_cast<std::int32_t>(below(state, alias_.size()));
  return unit(state) < alias_probability_[column] ? column : alias_[column];
}

bool TrainingNegatives::in_sample(std::int64_t index, std::int32_t item) const {
  if (train_.items[index] == item) return true;
  for (auto k = train_.history_offsets[index]; k < train_.history_offsets[index + 1]; ++k) {
    if (train_.history[k] == item) return true;
  }
  return false;
}

bool TrainingNegatives::excluded(std::int64_t index, std::int32_t item) const {
  if (item < kFirstItem) return true;
  if (in_sample(index, item)) return true;
  if (user_items_.empty() || !train_.has_users) return false;
  const auto u = train_.users[index];
  if (u < kFirstItem || u >= static_cast<std::int32_t>(user_items_.size())) return false;
  const auto& items = user_items_[u];
  return std::binary_search(items.begin(), items.end(), item);
}

void TrainingNegatives::draw(std::int64_t epoch, const std::int64_t* indices, std::int64_t n,
                             std::int64_t* out) const {
  const auto k = options_.per_positive;
  const auto epoch_seed = Rng::mix(options_.seed, static_cast<std::uint64_t>(epoch));
  for (std::int64_t b = 0; b < n; ++b) {
    const std::int64_t index = indices[b];
    std::uint64_t state = Rng::mix(epoch_seed, static_cast<std::uint64_t>(index));
    for (std::int64_t j = 0; j < k; ++j) {
      std::int32_t item = propose(state);
      int tries = 1;
      while (excluded(index, item) && tries < kMaxRejections) {
        item = propose(state);
        ++tries;
      }
      if (excluded(index, item)) {
        // Nearly everything is excluded: scan from the last proposal for an allowed item with
        // a non-zero probability; a user who saw every item gets the proposal itself.
        const auto start = item;
        for (std::int64_t step = 1; step < item_vocab_; ++step) {
          const auto candidate = static_cast<std::int32_t>(
              kFirstItem + (start - kFirstItem + step) % (item_vocab_ - kFirstItem));
          if (!excluded(index, candidate) && (weights_.empty() || weights_[candidate] > 0)) {
            item = candidate;
            break;
          }
        }
      }
      out[b * k + j] = item;
    }
  }
}

void TrainingNegatives::draw_pool(std::int64_t epoch, std::int64_t batch, std::int64_t* out) const {
  // A stream of its own, apart from the per-sample draws of the same epoch.
  std::uint64_t state =
      Rng::mix(Rng::mix(Rng::mix(options_.seed, 0x706f6f6cULL), static_cast<std::uint64_t>(epoch)),
               static_cast<std::uint64_t>(batch));
  for (std::int64_t j = 0; j < options_.shared_pool; ++j) out[j] = propose(state);
}

std::vector<float> TrainingNegatives::log_probabilities() const {
  std::vector<float> out(static_cast<std::size_t>(item_vocab_),
                         -std::numeric_limits<float>::infinity());
  for (std::int64_t i = kFirstItem; i < item_vocab_; ++i) {
    const double p =
        weights_.empty() ? 1.0 / static_cast<double>(item_vocab_ - kFirstItem) : weights_[i];
    if (p > 0) out[i] = static_cast<float>(std::log(p));
  }
  return out;
}

std::int64_t positive_count(const SampleSet& set) {
  if (!set.has_labels) return set.size();
  return static_cast<std::int64_t>(std::count(set.labels.begin(), set.labels.end(), 1));
}

SampleSet positives_only(const SampleSet& set) {
  if (!set.has_labels) return set;
  SampleSet out;
  out.source = set.source;
  out.has_labels = true;  // all 1: loss code that reads labels sees positives
  out.has_items = set.has_items;
  out.has_users = set.has_users;
  out.has_times = set.has_times;
  out.stats = set.stats;
  out.history_offsets.push_back(0);
  std::vector<std::int32_t> group_of;  // old group -> new group
  for (std::int64_t i = 0; i < set.size(); ++i) {
    if (set.labels[i] != 1) continue;
    out.labels.push_back(1);
    if (set.has_items) out.items.push_back(set.items[i]);
    if (set.has_users) {
      out.users.push_back(set.users[i]);
      out.user_groups.push_back(set.user_groups[i]);
    }
    if (set.has_times) out.times.push_back(set.times[i]);
    out.line_numbers.push_back(set.line_numbers[i]);
    for (auto k = set.history_offsets[i]; k < set.history_offsets[i + 1]; ++k) {
      out.history.push_back(set.history[k]);
    }
    out.history_offsets.push_back(static_cast<std::int64_t>(out.history.size()));
  }
  out.user_group_count = set.user_group_count;
  return out;
}

}  // namespace attnrec
