#pragma once
/// \file Negatives drawn by the trainer (`train.negatives`): for every positive training sample,
/// `per_positive` items the user never interacted with, drawn afresh every epoch, uniformly or
/// by popularity. A draw depends only on (seed, epoch, sample index), never on the order in
/// which batches are built, so a resumed run draws exactly what the uninterrupted run drew.

#include <cstdint>
#include <vector>

#include "attnrec/config/choices.hpp"
#include "attnrec/data/dataset.hpp"

namespace attnrec {

/// Options of a TrainingNegatives.
struct TrainingNegativesOptions {
  /// Negatives per positive. Default: 1
  std::int64_t per_positive = 1;
  /// uniform, or popularity (count^exponent). Default: uniform
  NegativeDistribution distribution = NegativeDistribution::uniform;
  /// Exponent of the popularity distribution (word2vec's 0.75). Default: 0.75
  double exponent = 0.75;
  /// Seed of every draw. Default: 0
  std::uint64_t seed = 0;
  /// >0: draw_pool() draws this many negatives per batch, shared by all its samples (and
  /// positions), instead of per_positive per sample. Default: 0
  std::int64_t shared_pool = 0;
};

/// Draws negatives for the samples of one training SampleSet.
///
/// Never drawn for a sample: padding, OOV, and any item its user interacted with: the items of
/// every row of that user in the training set (history, and target unless labelled 0) and in
/// the `exclude` sets
/// (validation/test, when asked for); for a file without users, the sample's own history and
/// target. Popularity counts each item's positive targets in the training set.
class TrainingNegatives {
 public:
  TrainingNegatives(const SampleSet& train, std::int64_t item_vocab,
                    TrainingNegativesOptions options,
                    const std::vector<const SampleSet*>& exclude = {});

  /// Writes `per_positive` negatives of each sample `indices[0..n)` of the training set, in
  /// epoch `epoch`, to `out[b * per_positive + j]`.
  void draw(std::int64_t epoch, const std::int64_t* indices, std::int64_t n,
            std::int64_t* out) const;

  /// Writes the shared pool of batch `batch` of epoch `epoch`: `shared_pool` items drawn
  /// independently (with replacement) from the distribution, excluding only padding and OOV;
  /// an item that is a sample's own positive is masked by the loss, not here. Depends only on
  /// (seed, epoch, batch), so a resumed run draws the same pools.
  void draw_pool(std::int64_t epoch, std::int64_t batch, std::int64_t* out) const;

  /// log q(item): the log-probability of drawing each item id (before exclusion); -inf for
  /// items never drawn. Sampled softmax subtracts it (the log-q correction).
  std::vector<float> log_probabilities() const;

  /// Whether `item` is excluded for sample `index` (what draw() never returns).
  bool excluded(std::int64_t index, std::int32_t item) const;

  std::int64_t per_positive() const { return options_.per_positive; }
  std::int64_t shared_pool() const { return options_.shared_pool; }
  const TrainingNegativesOptions& options() const { return options_; }

 private:
  std::int32_t propose(std::uint64_t& state) const;
  bool in_sample(std::int64_t index, std::int32_t item) const;

  const SampleSet& train_;
  std::int64_t item_vocab_;
  TrainingNegativesOptions options_;
  // Per user vocabulary id: the sorted items that user interacted with (empty without users).
  std::vector<std::vector<std::int32_t>> user_items_;
  // Popularity: Walker/Vose alias table over item ids (empty for uniform).
  std::vector<double> alias_probability_;
  std::vector<std::int32_t> alias_;
  std::vector<double> weights_;  // popularity weights by item id (sum normalised to 1)
};

/// The positive samples of `set` (label 1; every sample when it has no labels), in file order,
/// as a new SampleSet without labels' negatives: what training with drawn negatives iterates.
SampleSet positives_only(const SampleSet& set);

/// The number of samples positives_only() keeps.
std::int64_t positive_count(const SampleSet& set);

}  // namespace attnrec
