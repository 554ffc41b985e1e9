#include "attnrec/data/preprocess_stages.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <tuple>

#include "attnrec/util/error.hpp"

namespace attnrec {

std::int64_t deduplicate(std::vector<Event>& events, DedupPolicy policy) {
  if (policy == DedupPolicy::none) return 0;
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return std::tie(a.user, a.item, a.time, a.order) < std::tie(b.user, b.item, b.time, b.order);
  });
  std::int64_t duplicates = 0;
  std::size_t w = 0;
  for (std::size_t r = 0; r < events.size();) {
    std::size_t e = r;
    while (e < events.size() && events[e].user == events[r].user &&
           events[e].item == events[r].item) {
      ++e;
    }
    events[w++] = events[policy == DedupPolicy::last ? e - 1 : r];
    duplicates += static_cast<std::int64_t>(e - r - 1);
    r = e;
  }
  events.resize(w);
  return duplicates;
}

KcoreResult kcore_filter(std::vector<Event>& events, std::int64_t users, std::int64_t items,
                         std::int64_t min_user, std::int64_t min_item) {
  KcoreResult result;
  std::vector<std::int64_t> user_count;
  for (;;) {
    user_count.assign(static_cast<std::size_t>(users), 0);
    result.item_count.assign(static_cast<std::size_t>(items), 0);
    for (const auto& e : events) {
      ++user_count[e.user];
      ++result.item_count[e.item];
    }
    const auto before = events.size();
    events.erase(std::remove_if(events.begin(), events.end(),
                                [&](const Event& e) {
                                  return user_count[e.user] < min_user ||
                                         result.item_count[e.item] < min_item;
                                }),
                 events.end());
    if (events.size() == before) return result;
    result.dropped += static_cast<std::int64_t>(before - events.size());
    ++result.rounds;
  }
}

Timelines sort_timelines(std::vector<Event>& events) {
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return std::tie(a.user, a.time, a.order) < std::tie(b.user, b.time, b.order);
  });
  Timelines timelines;
  for (std::size_t r = 0; r < events.size();) {
    std::size_t e = r;
    while (e < events.size() && events[e].user == events[r].user) ++e;
    timelines.emplace_back(r, e);
    r = e;
  }
  return timelines;
}

nlohmann::json split_leave_last_out(std::vector<Event>& events, const Timelines& timelines) {
  std::int64_t train_only_users = 0;
  for (const auto& [b, e] : timelines) {
    const std::size_t n = e - b;
    for (std::size_t k = 0; k < n; ++k) {
      int s = 0;
      if (n >= 3 && k == n - 1) s = 2;
      if (n >= 3 && k == n - 2) s = 1;
      events[b + k].split = s;
    }
    if (n < 3) ++train_only_users;
  }
  return {{"protocol", "leave_last_out"},
          {"users_with_fewer_than_3_events_train_only", train_only_users}};
}

nlohmann::json split_temporal(std::vector<Event>& events, double valid_fraction,
                              double test_fraction) {
  std::vector<std::int64_t> times;
  times.reserve(events.size());
  for (const auto& e : events) times.push_back(e.time);
  auto quantile = [&](double q) {
    const auto k = std::min(times.size() - 1, static_cast<std::size_t>(q * times.size()));
    std::nth_element(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(k), times.end());
    return times[k];
  };
  const std::int64_t test_from = quantile(1.0 - test_fraction);
  const std::int64_t valid_from = quantile(1.0 - test_fraction - valid_fraction);
  for (auto& e : events) e.split = e.time >= test_from ? 2 : e.time >= valid_from ? 1 : 0;
  return {{"protocol", "temporal"}, {"valid_from_time", valid_from}, {"test_from_time", test_from}};
}

std::int64_t drop_short_histories(std::vector<Event>& events, const Timelines& timelines,
                                  std::int64_t min_history) {
  std::int64_t dropped = 0;
  for (const auto& [b, e] : timelines) {
    for (std::size_t k = 0; k < e - b && k < static_cast<std::size_t>(min_history); ++k) {
      if (events[b + k].split >= 0) ++dropped;
      events[b + k].split = -1;
    }
  }
  return dropped;
}

NegativeSampler::NegativeSampler(std::vector<std::int32_t> kept_items,
                                 std::vector<std::int64_t> train_count, std::uint64_t seed)
    : kept_items_(std::move(kept_items)), train_count_(std::move(train_count)), rng_(seed) {
  double total = 0;
  for (const auto i : kept_items_) {
    if (train_count_[static_cast<std::size_t>(i)] == 0) continue;
    total += static_cast<double>(train_count_[static_cast<std::size_t>(i)]);
    popular_items_.push_back(i);
    popular_cdf_.push_back(total);
  }
}

void NegativeSampler::set_user(const std::vector<std::int32_t>& interacted) {
  interacted_ = &interacted;
  // Every interacted item is a kept item; only those with training interactions are in the
  // popularity pool.
  available_[0] = static_cast<std::int64_t>(kept_items_.size() - interacted.size());
  std::int64_t popular_touched = 0;
  for (const auto i : interacted) popular_touched += train_count_[static_cast<std::size_t>(i)] > 0;
  available_[1] = static_cast<std::int64_t>(popular_items_.size()) - popular_touched;
}

std::int32_t NegativeSampler::draw(bool popularity) {
  return popularity ? popular_items_[rng_.categorical(popular_cdf_)]
                    : kept_items_[rng_.uniform_int(kept_items_.size())];
}

void NegativeSampler::sample(std::int64_t count, bool popularity, const std::string& user,
                             std::vector<std::int32_t>& out) {
  out.clear();
  const auto& pool = popularity ? popular_items_ : kept_items_;
  if (available_[popularity ? 1 : 0] < count) {
    throw DataError(fmt::format(
        "preprocess: user \"{}\" interacted with all but {} of the {} items that can be drawn, "
        "fewer than the {} negatives asked for; lower --negatives/--ranking-negatives or "
        "filter such users (--min-item-interactions, fewer items)",
        user, available_[popularity ? 1 : 0], pool.size(), count));
  }
  while (static_cast<std::int64_t>(out.size()) < count) {
    const std::int32_t c = draw(popularity);
    if (std::binary_search(interacted_->begin(), interacted_->end(), c)) continue;
    if (std::find(out.begin(), out.end(), c) != out.end()) continue;
    out.push_back(c);
  }
}

}  // namespace attnrec
