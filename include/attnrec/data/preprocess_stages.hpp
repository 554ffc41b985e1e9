#pragma once
/// \file The stages of `attnrec preprocess`, pure functions over event vectors (each tested on
/// its own): deduplication, k-core filtering, per-user timelines, the split protocols, and
/// the negative sampler.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "attnrec/config/choices.hpp"
#include "attnrec/util/rng.hpp"

namespace attnrec {

/// One kept interaction (32 bytes; the log's text is not kept).
struct Event {
  std::int32_t user;
  std::int32_t item;
  std::int64_t time;
  std::int64_t order;  ///< position in the input, breaks timestamp ties
  std::int32_t split;  ///< 0 train, 1 valid, 2 test, -1 no sample
  std::int32_t unused;
};
static_assert(sizeof(Event) == 32, "Event should stay compact");

/// Keeps one interaction per (user, item) (the earliest or the latest by (time, order));
/// returns how many were dropped. Leaves events sorted by (user, item, time, order).
std::int64_t deduplicate(std::vector<Event>& events, DedupPolicy policy);

/// What k-core filtering did.
struct KcoreResult {
  std::int64_t dropped = 0;              ///< interactions removed
  std::int64_t rounds = 0;               ///< passes that removed something
  std::vector<std::int64_t> item_count;  ///< per item id, in the kept events
};

/// Removes users with fewer than `min_user` and items with fewer than `min_item` interactions,
/// repeatedly, until every remaining one has enough (`users`/`items`: id counts).
KcoreResult kcore_filter(std::vector<Event>& events, std::int64_t users, std::int64_t items,
                         std::int64_t min_user, std::int64_t min_item);

/// [begin, end) of each user's events, in user order.
using Timelines = std::vector<std::pair<std::size_t, std::size_t>>;

/// Sorts events by (user, time, file order) and returns each user's span.
Timelines sort_timelines(std::vector<Event>& events);

/// Leave-last-out: a user's last event is test, the one before valid, the rest train; users
/// with fewer than 3 events are train only. Returns the protocol's description.
nlohmann::json split_leave_last_out(std::vector<Event>& events, const Timelines& timelines);

/// Global temporal split at the time quantiles 1 - test and 1 - test - valid.
nlohmann::json split_temporal(std::vector<Event>& events, double valid_fraction,
                              double test_fraction);

/// The first `min_history` events of each user make no sample (they stay in histories);
/// returns how many would-be targets were dropped.
std::int64_t drop_short_histories(std::vector<Event>& events, const Timelines& timelines,
                                  std::int64_t min_history);

/// Draws negatives (items a user never interacted with) uniformly from the kept items, or by
/// training-split popularity.
class NegativeSampler {
 public:
  /// `kept_items`: ids with at least one kept interaction; `train_count`: training-split
  /// interactions per item id.
  NegativeSampler(std::vector<std::int32_t> kept_items, std::vector<std::int64_t> train_count,
                  std::uint64_t seed);
  /// Whether popularity sampling is possible (the training split has items).
  bool has_popularity() const { return !popular_items_.empty(); }
  /// The next user: the sorted, distinct items they interacted with in any split.
  void set_user(const std::vector<std::int32_t>& interacted);
  /// `count` distinct items the current user never interacted with. Throws DataError naming
  /// `user` when the pool holds fewer, checked first so rejection sampling cannot loop long.
  void sample(std::int64_t count, bool popularity, const std::string& user,
              std::vector<std::int32_t>& out);

 private:
  std::int32_t draw(bool popularity);

  std::vector<std::int32_t> kept_items_, popular_items_;
  std::vector<double> popular_cdf_;
  std::vector<std::int64_t> train_count_;
  const std::vector<std::int32_t>* interacted_ = nullptr;
  std::int64_t available_[2] = {0, 0};  ///< the user's untouched items: uniform / popularity
  Rng rng_;
};

}  // namespace attnrec
