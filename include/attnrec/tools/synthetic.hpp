#pragma once
/// \file Synthetic click data with a known answer: the bundled default data set.
///
/// Items belong to latent categories and have Zipf-like popularity; every item has a latent
/// vector close to its category's direction. A user's history mixes a few interests with skewed
/// weights. The true click probability of a candidate is
///   sigmoid(slope * max_t sim(candidate, history_t) + popularity_weight * pop(candidate) + bias)
/// so what matters is the *best-matching specific* history item. Mean-pooling the history
/// dilutes that item among the user's other interests, while target attention can find it.
/// The generator records the Bayes-optimal metrics and, for every test sample, the history
/// positions that share the candidate's category ("planted" positions) and the best match.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace attnrec {

/// Generator parameters. Default: the quickstart data set.
struct SyntheticOptions {
  std::int64_t users = 4000;
  std::int64_t items = 1000;
  std::int64_t categories = 20;
  std::int64_t train = 80000;  ///< training samples
  std::int64_t valid = 10000;
  std::int64_t test = 10000;
  std::int64_t min_history = 10;
  std::int64_t max_history = 50;
  std::int64_t min_interests = 3;
  std::int64_t max_interests = 6;
  double zipf = 1.0;   ///< popularity exponent: weight of rank r is r^-zipf
  double noise = 0.2;  ///< norm of an item's deviation from its category direction
  double slope = 8.0;  ///< weight of the best history match in the click logit
  double bias = -6.0;
  double popularity_weight = 0.0;  ///< weight of the candidate's (centred) log-popularity
  double in_interest = 0.7;        ///< chance that a candidate comes from the user's interests
  std::uint64_t seed = 7;

  /// Throws UsageError naming the offending option when the combination is impossible.
  void validate() const;
  nlohmann::json to_json() const;
};

/// Writes train.tsv, valid.tsv, test.tsv and oracle.json into `out_dir` (created if needed).
/// Output is byte-identical for the same options on every machine. Returns the oracle.
nlohmann::json generate_synthetic(const std::string& out_dir, const SyntheticOptions& options);

/// A synthetic *interaction log* (for `attnrec preprocess`), built on the same item world:
/// each user's sequence moves between their interests, staying in the current category with
/// probability `stay` (so the recent history predicts the next item, which popularity alone
/// cannot), sometimes clicking a globally popular item instead (`explore`, mostly rated low).
struct LogOptions {
  std::int64_t users = 6000;
  std::int64_t items = 3000;
  std::int64_t categories = 30;
  std::int64_t min_events = 10;
  std::int64_t max_events = 80;
  double stay = 0.7;     ///< chance the next event stays in the current category
  double explore = 0.1;  ///< chance of a popular item outside the user's interests
  double zipf = 1.0;
  std::string format = "movielens";  ///< movielens (`u::i::r::t`) | taobao (with categories)
  std::uint64_t seed = 11;

  void validate() const;
};

/// Writes the log to `path`; returns {"users", "items", "events"}.
nlohmann::json generate_interaction_log(const std::string& path, const LogOptions& options);

}  // namespace attnrec
