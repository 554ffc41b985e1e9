#include "attnrec/data/leakage.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include "attnrec/data/interner.hpp"
#include "attnrec/data/tsv.hpp"
#include "attnrec/data/vocab.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {
namespace {

constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::min();

/// A tab-separated file whose header names its columns. Calls `row(line_number, fields)`.
template <class Row>
void read_table(const std::string& path, const std::vector<std::string>& required,
                std::vector<int>& index, Row&& row) {
  TsvReader in(path, "file");
  std::size_t width = 0;
  while (in.next()) {
    const auto& fields = in.fields();
    const std::int64_t n = in.line_number();
    if (n == 1) {
      std::vector<std::string> names(fields.begin(), fields.end());
      index.clear();
      for (const auto& r : required) {
        const auto it = std::find(names.begin(), names.end(), r);
        if (it == names.end()) {
          throw DataError(
              fmt::format("{}:1: check-data needs a header naming the columns; "
                          "column \"{}\" missing from [{}]",
                          path, r, join(names, ", ")));
        }
        index.push_back(static_cast<int>(it - names.begin()));
      }
      width = names.size();
      continue;
    }
    if (fields.size() != width) {
      in.fail(fmt::format("expected {} tab-separated fields, got {}", width, fields.size()));
    }
    row(n, fields);
  }
  if (in.line_number() == 0) throw DataError(path + ": file is empty");
}

struct Occurrence {
  std::int32_t user, item;
  std::int64_t time, seq;  // seq: position in the user's timeline
};

class Checker {
 public:
  explicit Checker(std::size_t max_examples) : max_examples_(max_examples) {}

  void read_log(const std::string& path) {
    std::vector<int> col;
    std::int32_t last_user = -1;
    std::int64_t seq = 0, last_time = kNone;
    read_table(path, {"user", "item", "time"}, col,
               [&](std::int64_t n, const std::vector<std::string_view>& f) {
                 std::int64_t t = 0;
                 if (!parse_int64(f[col[2]], t)) {
                   throw DataError(fmt::format("{}:{}: time must be an integer", path, n));
                 }
                 const auto u = users_.intern(f[col[0]]);
                 const auto i = items_.intern(f[col[1]]);
                 if (u != last_user) {
                   seq = 0;
                   last_time = kNone;
                 }
                 if (t < last_time) {
                   violation("log_out_of_order", fmt::format("{}:{}: time {} before the user's "
                                                             "previous event ({})",
                                                             path, n, t, last_time));
                 }
                 log_.push_back({u, i, t, seq++});
                 last_user = u;
                 last_time = t;
               });
    std::sort(log_.begin(), log_.end(), [](const Occurrence& a, const Occurrence& b) {
      return std::tie(a.user, a.item, a.seq) < std::tie(b.user, b.item, b.seq);
    });
    per_user_.assign(static_cast<std::size_t>(users_.size()), UserSplits{});
    checked_["log_interactions"] = log_.size();
  }

  /// Sample file with label/user/item/history/time columns; split 0 train, 1 valid, 2 test.
  void read_samples(const std::string& path, int split) {
    std::vector<int> col;
    std::vector<std::string_view> history;
    std::int64_t samples = 0;
    read_table(path, {"label", "user", "item", "history", "time"}, col,
               [&](std::int64_t n, const std::vector<std::string_view>& f) {
                 ++samples;
                 const auto where = [&] { return fmt::format("{}:{}", path, n); };
                 std::int64_t t = 0;
                 if (!parse_int64(f[col[4]], t)) {
                   throw DataError(where() + ": time must be an integer");
                 }
                 const bool positive = f[col[0]] == "1";
                 history.clear();
                 if (!f[col[3]].empty()) split_history(f[col[3]], history);
                 if (split == 0) {
                   train_items_.intern(f[col[2]]);
                   for (auto h : history) train_items_.intern(h);
                 }
                 check_sample(where, f[col[1]], f[col[2]], positive, t, history, split);
               });
    checked_[std::string(kSplitNames[split]) + "_samples"] = samples;
  }

  /// `counter`: the key of `checked` that counts its rows.
  void read_candidates(const std::string& path, const char* counter) {
    std::vector<int> col;
    std::vector<std::string_view> history, negatives;
    std::int64_t rows = 0;
    read_table(path, {"user", "item", "history", "time", "negatives"}, col,
               [&](std::int64_t n, const std::vector<std::string_view>& f) {
                 ++rows;
                 const auto where = [&] { return fmt::format("{}:{}", path, n); };
                 std::int64_t t = 0;
                 if (!parse_int64(f[col[3]], t))
                   throw DataError(where() + ": time must be an integer");
                 history.clear();
                 if (!f[col[2]].empty()) split_history(f[col[2]], history);
                 check_sample(where, f[col[0]], f[col[1]], true, t, history, -1);
                 split(f[col[4]], ',', negatives);
                 const auto u = users_.find(f[col[0]]);
                 for (auto neg : negatives) {
                   if (neg == f[col[1]] || (u >= 0 && interacted(u, items_.find(neg)))) {
                     violation("negative_interacted",
                               fmt::format("{}: candidate \"{}\" was interacted with by user "
                                           "\"{}\"",
                                           where(), neg, f[col[0]]));
                   }
                 }
               });
    checked_[counter] = rows;
  }

  void check_vocab(const std::string& path) {
    const Vocab vocab = Vocab::load(path);
    std::int64_t ids = 0;
    for (std::int32_t id = Vocab::kReserved; id < vocab.size(); ++id) {
      ++ids;
      if (train_items_.find(vocab.token(id)) < 0) {
        violation("vocab_not_from_train",
                  fmt::format("{}:{}: id \"{}\" does not occur in the training file", path, id + 1,
                              vocab.token(id)));
      }
    }
    checked_["vocab_ids"] = ids;
  }

  void finish_split_order() {
    for (std::size_t u = 0; u < per_user_.size(); ++u) {
      const auto& s = per_user_[u];
      auto later = [&](int a, int b) {  // some target of split a is not before one of split b
        return s.max_seq[a] != kNone && s.min_seq[b] != kNone && s.max_seq[a] >= s.min_seq[b];
      };
      for (auto [a, b] : {std::pair{0, 1}, {0, 2}, {1, 2}}) {
        if (later(a, b)) {
          violation("split_order",
                    fmt::format("user \"{}\": a {} target (timeline position {}) is not before "
                                "a {} target (position {})",
                                users_.token(static_cast<std::int32_t>(u)), kSplitNames[a],
                                s.max_seq[a], kSplitNames[b], s.min_seq[b]));
        }
      }
    }
  }

  nlohmann::json report() const {
    nlohmann::json v = nlohmann::json::object();
    std::int64_t total = 0;
    for (const auto& [kind, entry] : violations_) {
      v[kind] = {{"count", entry.first}, {"examples", entry.second}};
      total += entry.first;
    }
    auto checked = checked_;
    checked["repeat_targets_in_history"] = repeat_targets_;
    return {
        {"ok", total == 0}, {"violations_total", total}, {"checked", checked}, {"violations", v}};
  }

 private:
  static constexpr const char* kSplitNames[] = {"train", "valid", "test"};

  struct UserSplits {
    std::int64_t min_seq[3] = {kNone, kNone, kNone};
    std::int64_t max_seq[3] = {kNone, kNone, kNone};
  };

  static void split_history(std::string_view s, std::vector<std::string_view>& out) {
    split(s, ',', out);
  }

  /// Occurrences of (user, item) in timeline order, as [begin, end).
  std::pair<const Occurrence*, const Occurrence*> occurrences(std::int32_t u,
                                                              std::int32_t i) const {
    if (u < 0 || i < 0) return {nullptr, nullptr};
    const Occurrence key{u, i, 0, std::numeric_limits<std::int64_t>::min()};
    const auto lo = std::lower_bound(
        log_.begin(), log_.end(), key, [](const Occurrence& a, const Occurrence& b) {
          return std::tie(a.user, a.item, a.seq) < std::tie(b.user, b.item, b.seq);
        });
    auto hi = lo;
    while (hi != log_.end() && hi->user == u && hi->item == i) ++hi;
    return {log_.data() + (lo - log_.begin()), log_.data() + (hi - log_.begin())};
  }
  bool interacted(std::int32_t u, std::int32_t i) const {
    const auto [b, e] = occurrences(u, i);
    return b != e;
  }

  template <class Where>
  void check_sample(const Where& where, std::string_view user, std::string_view item, bool positive,
                    std::int64_t time, const std::vector<std::string_view>& history, int split) {
    const auto u = users_.find(user);
    if (u < 0) {
      violation("user_not_in_log", fmt::format("{}: user \"{}\" is not in the log", where(), user));
      return;
    }
    const auto i = items_.find(item);
    std::int64_t target_seq = kNone;
    if (positive) {
      const auto [b, e] = occurrences(u, i);
      for (auto* o = b; o != e; ++o) {
        if (o->time == time) {
          target_seq = o->seq;
          break;
        }
      }
      if (target_seq == kNone) {
        violation("target_not_in_log",
                  fmt::format("{}: positive (\"{}\", \"{}\", time {}) is not in the log", where(),
                              user, item, time));
      } else if (split >= 0) {
        auto& s = per_user_[u];
        s.min_seq[split] =
            s.min_seq[split] == kNone ? target_seq : std::min(s.min_seq[split], target_seq);
        s.max_seq[split] = std::max(s.max_seq[split], target_seq);
      }
      if (split >= 1 && std::find(history.begin(), history.end(), item) != history.end()) {
        // Repeat consumption (an earlier interaction with the same item) may sit in the
        // history; a target whose only occurrence is itself may not.
        const auto [b, e] = occurrences(u, i);
        const bool earlier = target_seq != kNone && b != e && b->seq < target_seq;
        if (earlier) {
          ++repeat_targets_;
        } else {
          violation("target_in_history",
                    fmt::format("{}: the target \"{}\" is in its own history", where(), item));
        }
      }
    } else if (interacted(u, i)) {
      violation("negative_interacted",
                fmt::format("{}: negative \"{}\" was interacted with by user \"{}\"", where(), item,
                            user));
    }
    std::int64_t previous = -1;
    for (std::size_t p = 0; p < history.size(); ++p) {
      const auto [b, e] = occurrences(u, items_.find(history[p]));
      if (b == e) {
        violation("history_item_not_in_log",
                  fmt::format("{}: history item \"{}\" (position {}) is not among user \"{}\"'s "
                              "interactions",
                              where(), history[p], p, user));
        continue;
      }
      // The earliest occurrence after the previous history item keeps repeated items apart.
      const Occurrence* chosen = nullptr;
      for (auto* o = b; o != e; ++o) {
        if (o->seq > previous) {
          chosen = o;
          break;
        }
      }
      if (!chosen) {
        violation("history_out_of_order",
                  fmt::format("{}: history item \"{}\" (position {}) comes before the previous "
                              "history item in the user's timeline",
                              where(), history[p], p));
        chosen = b;
      }
      previous = chosen->seq;
      const bool before = target_seq != kNone ? chosen->seq < target_seq : chosen->time <= time;
      if (!before) {
        violation("history_not_before_target",
                  fmt::format("{}: history item \"{}\" (position {}, time {}) does not precede the "
                              "target (time {})",
                              where(), history[p], p, chosen->time, time));
      }
    }
  }

  void violation(const std::string& kind, std::string example) {
    auto& entry = violations_[kind];
    ++entry.first;
    if (entry.second.size() < max_examples_) entry.second.push_back(std::move(example));
  }

  std::size_t max_examples_;
  std::int64_t repeat_targets_ = 0;
  StringInterner users_, items_, train_items_;
  std::vector<Occurrence> log_;
  std::vector<UserSplits> per_user_;
  std::map<std::string, std::pair<std::int64_t, std::vector<std::string>>> violations_;
  nlohmann::json checked_ = nlohmann::json::object();
};

}  // namespace

CheckDataOptions CheckDataOptions::resolved() const {
  namespace fs = std::filesystem;
  CheckDataOptions r = *this;
  auto pick = [&](std::string& given, const char* name) {
    if (given.empty() && !dir.empty()) given = (fs::path(dir) / name).string();
  };
  pick(r.train, "train.tsv");
  pick(r.valid, "valid.tsv");
  pick(r.test, "test.tsv");
  pick(r.interactions, "interactions.tsv");
  auto pick_existing = [&](std::string& given, const char* name) {
    if (given.empty() && !dir.empty() && fs::exists(fs::path(dir) / name)) {
      given = (fs::path(dir) / name).string();
    }
  };
  pick_existing(r.candidates, "test_candidates.tsv");
  pick_existing(r.valid_candidates, "valid_candidates.tsv");
  return r;
}

nlohmann::json check_data(const CheckDataOptions& options) {
  const CheckDataOptions o = options.resolved();
  const std::string& train = o.train;
  const std::string& valid = o.valid;
  const std::string& test = o.test;
  const std::string& log = o.interactions;
  const std::string& candidates = o.candidates;
  if (log.empty()) {
    throw UsageError("check-data: the interaction log is required (--interactions or --dir)");
  }
  if (train.empty())
    throw UsageError("check-data: the training file is required (--train or --dir)");
  Checker checker(o.max_examples);
  checker.read_log(log);
  checker.read_samples(train, 0);
  if (!valid.empty()) checker.read_samples(valid, 1);
  if (!test.empty()) checker.read_samples(test, 2);
  if (!candidates.empty()) checker.read_candidates(candidates, "candidate_rows");
  if (!o.valid_candidates.empty()) {
    checker.read_candidates(o.valid_candidates, "valid_candidate_rows");
  }
  if (!o.vocab.empty()) checker.check_vocab(o.vocab);
  checker.finish_split_order();
  auto report = checker.report();
  report["files"] = {
      {"train", train},      {"valid", valid},           {"test", test},
      {"interactions", log}, {"candidates", candidates}, {"valid_candidates", o.valid_candidates},
      {"vocab", o.vocab}};
  return report;
}

std::string format_leakage_report(const nlohmann::json& report) {
  std::string out;
  for (const auto& [k, v] : report.at("checked").items()) {
    out += fmt::format("checked {:<24}{:>12}\n", k, v.get<std::int64_t>());
  }
  if (report.at("ok").get<bool>()) {
    out += "no leakage found\n";
    return out;
  }
  for (const auto& [kind, v] : report.at("violations").items()) {
    out += fmt::format("VIOLATION {}: {}\n", kind, v.at("count").get<std::int64_t>());
    for (const auto& e : v.at("examples")) out += "  " + e.get<std::string>() + "\n";
  }
  return out;
}

}  // namespace attnrec
