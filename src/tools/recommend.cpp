#include "attnrec/tools/recommend.hpp"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <tuple>
#include <unordered_map>

#include "attnrec/data/tsv.hpp"
#include "attnrec/eval/evaluation.hpp"
#include "attnrec/eval/ranking_eval.hpp"
#include "attnrec/io/checkpoint.hpp"
#include "attnrec/io/outputs.hpp"
#include "attnrec/io/run_dir.hpp"
#include "attnrec/util/device.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/progress.hpp"

namespace attnrec {

namespace fs = std::filesystem;

namespace {

/// One pass over the row, keeping the best `k` so far in order: a score enters only when it
/// beats the worst kept one (ids ascend, so an equal score never wins the tie), so most items
/// cost a comparison.
template <class T>
Recommendation top_k_scan(const T* scores, std::int64_t count, std::int32_t first,
                          const std::vector<std::int32_t>& excluded, std::int64_t k) {
  const auto keep = static_cast<std::size_t>(std::max<std::int64_t>(k, 0));
  std::vector<std::pair<double, std::int32_t>> best;  // (key, id), best first
  best.reserve(keep + 1);
  auto skip = excluded.begin();
  for (std::int64_t j = 0; j < count && keep > 0; ++j) {
    const double s = static_cast<double>(scores[j]);
    const double key = std::isfinite(s) ? s : -std::numeric_limits<double>::infinity();
    if (best.size() == keep && !(key > best.back().first)) continue;
    const auto id = static_cast<std::int32_t>(first + j);
    while (skip != excluded.end() && *skip < id) ++skip;
    if (skip != excluded.end() && *skip == id) continue;
    const auto at = std::upper_bound(best.begin(), best.end(), key,
                                     [](double v, const auto& e) { return v > e.first; });
    best.insert(at, {key, id});
    if (best.size() > keep) best.pop_back();
  }
  Recommendation r;
  for (const auto& [key, id] : best) {
    r.items.push_back(id);
    r.scores.push_back(static_cast<double>(scores[id - first]));
  }
  return r;
}

}  // namespace

Recommendation top_k(const double* scores, std::int64_t count, std::int32_t first,
                     const std::vector<std::int32_t>& excluded, std::int64_t k) {
  return top_k_scan(scores, count, first, excluded, k);
}

Recommendation top_k(const float* scores, std::int64_t count, std::int32_t first,
                     const std::vector<std::int32_t>& excluded, std::int64_t k) {
  return top_k_scan(scores, count, first, excluded, k);
}

Recommendation top_k_of(const double* scores, const std::vector<std::int32_t>& ids,
                        std::int64_t k) {
  const auto key = [&](std::size_t j) {
    return std::isfinite(scores[j]) ? scores[j] : -std::numeric_limits<double>::infinity();
  };
  std::vector<std::size_t> order(ids.size());
  for (std::size_t j = 0; j < order.size(); ++j) order[j] = j;
  const auto n = std::min(order.size(), static_cast<std::size_t>(std::max<std::int64_t>(k, 0)));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(),
                    [&](std::size_t a, std::size_t b) {
                      return key(a) > key(b) || (key(a) == key(b) && ids[a] < ids[b]);
                    });
  Recommendation r;
  for (std::size_t i = 0; i < n; ++i) {
    r.items.push_back(ids[order[i]]);
    r.scores.push_back(scores[order[i]]);
  }
  return r;
}

CandidateLists read_candidate_lists(const std::string& path, const std::vector<std::string>& names,
                                    const Vocab& items) {
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t u = 0; u < names.size(); ++u) index.emplace(names[u], u);
  TsvReader f(path, "candidates file");
  f.expect_header({"user", "item"}, /*exact=*/false,
                  "(user<TAB>item, one candidate per line, e.g. the output of a retrieval stage)");
  CandidateLists out;
  out.items.resize(names.size());
  while (f.next()) {
    const auto& fields = f.fields();
    if (fields.size() < 2 || fields[1].empty()) f.fail("expected user<TAB>item");
    const auto it = index.find(std::string(fields[0]));
    if (it == index.end()) {
      ++out.other_users;
      continue;
    }
    const auto id = items.lookup(fields[1]);
    if (id < Vocab::kReserved) {
      ++out.unknown_items;
      continue;
    }
    out.items[it->second].push_back(id);
  }
  for (auto& list : out.items) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  return out;
}

namespace {

/// One event of the log.
struct Event {
  std::int64_t time = 0;
  std::int64_t line = 0;
  std::int32_t item = 0;
};

/// Appends a request row (user id, history) to `rows`.
void add_row(SampleSet& rows, std::int32_t user, std::int32_t group,
             const std::vector<std::int32_t>& history, std::int64_t line) {
  rows.users.push_back(user);
  rows.user_groups.push_back(group);
  rows.line_numbers.push_back(line);
  rows.history.insert(rows.history.end(), history.begin(), history.end());
  rows.history_offsets.push_back(static_cast<std::int64_t>(rows.history.size()));
}

void sort_unique(std::vector<std::int32_t>& ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
}

}  // namespace

RecommendUsers users_from_log(const std::string& path, const Vocab& items, const Vocab& users,
                              std::int64_t max_history) {
  TsvReader f(path, "interaction log");
  f.expect_header({"user", "item"}, /*exact=*/false,
                  "(user<TAB>item[<TAB>time], e.g. the interactions.tsv of attnrec preprocess)");
  const bool timed = f.fields().size() >= 3 && f.fields()[2] == "time";
  std::unordered_map<std::string, std::size_t> index;
  std::vector<std::string> names;
  std::vector<std::vector<Event>> events;
  while (f.next()) {
    const auto& fields = f.fields();
    if (fields.size() < (timed ? 3u : 2u))
      f.fail("expected user<TAB>item" + std::string(timed ? "<TAB>time" : ""));
    Event e;
    e.line = f.line_number();
    e.item = items.lookup(fields[1]);
    if (timed) {
      const std::string text(fields[2]);
      char* end = nullptr;
      e.time = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0') f.fail("time: expected an integer, got \"" + text + "\"");
    }
    const auto [it, added] = index.emplace(std::string(fields[0]), names.size());
    if (added) {
      names.emplace_back(fields[0]);
      events.emplace_back();
    }
    events[it->second].push_back(e);
  }
  RecommendUsers out;
  out.rows.source = path;
  out.rows.has_users = true;
  out.rows.history_offsets.push_back(0);
  for (std::size_t u = 0; u < names.size(); ++u) {
    auto& ev = events[u];
    std::stable_sort(ev.begin(), ev.end(),
                     [](const Event& a, const Event& b) { return a.time < b.time; });
    const auto from = ev.size() > static_cast<std::size_t>(max_history)
                          ? ev.size() - static_cast<std::size_t>(max_history)
                          : 0;
    std::vector<std::int32_t> history, seen;
    for (std::size_t i = 0; i < ev.size(); ++i) {
      if (i >= from) history.push_back(ev[i].item);
      seen.push_back(ev[i].item);
    }
    sort_unique(seen);
    add_row(out.rows, users.lookup(names[u]), static_cast<std::int32_t>(u), history,
            ev.back().line);
    out.seen.push_back(std::move(seen));
  }
  out.rows.user_group_count = static_cast<std::int64_t>(names.size());
  out.rows.stats.samples = out.rows.size();
  out.names = std::move(names);
  return out;
}

namespace {

/// The user ids of `set`'s rows `rows` (ascending), read back from its source lines (the
/// encoded set keeps vocabulary ids, and unknown users are all OOV there).
std::vector<std::string> user_names(const SampleSet& set, const std::vector<std::string>& columns,
                                    const std::vector<std::int64_t>& rows) {
  const auto col =
      static_cast<std::size_t>(std::find(columns.begin(), columns.end(), "user") - columns.begin());
  TsvReader in(set.source, "users file (again, to copy the user ids)");
  std::vector<std::string> names;
  for (const auto r : rows) {
    while (in.line_number() < set.line_numbers[r] && in.next()) {
    }
    names.emplace_back(col < in.fields().size() ? in.fields()[col] : std::string_view());
  }
  return names;
}

/// One list per distinct user of a sample file: the history of its last row; seen: the items
/// of all its rows' histories and positive items.
RecommendUsers users_from_samples(const std::string& path, const LoadedModel& loaded,
                                  const Config& config) {
  ReaderOptions options = reader_options(config.data, at::get_num_threads());
  options.columns = scoring_columns(path, loaded.config, config.data, false, true);
  options.require_both_classes = false;
  if (std::find(options.columns.begin(), options.columns.end(), "user") == options.columns.end()) {
    throw DataError(path +
                    ": --users needs a user column (one list is written per user); name it in "
                    "the file's header (user), or with --set 'data.columns=[...]' for a file "
                    "without one, or use --all with the interaction log");
  }
  const SampleSet set = read_sample_file(path, options, loaded.items, loaded.users);
  std::vector<std::int64_t> last(static_cast<std::size_t>(set.user_group_count), -1);
  std::vector<std::vector<std::int32_t>> seen(last.size());
  for (std::int64_t i = 0; i < set.size(); ++i) {
    const auto g = static_cast<std::size_t>(set.user_groups[i]);
    last[g] = i;
    seen[g].insert(seen[g].end(), set.history.begin() + set.history_offsets[i],
                   set.history.begin() + set.history_offsets[i + 1]);
    if (set.has_items && (!set.has_labels || set.labels[i] == 1)) seen[g].push_back(set.items[i]);
  }
  std::vector<std::int64_t> rows;
  for (const auto i : last) {
    if (i >= 0) rows.push_back(i);
  }
  std::sort(rows.begin(), rows.end());
  RecommendUsers out;
  out.names = user_names(set, options.columns, rows);
  out.rows.source = path;
  out.rows.has_users = true;
  out.rows.history_offsets.push_back(0);
  for (const auto i : rows) {
    const std::vector<std::int32_t> history(set.history.begin() + set.history_offsets[i],
                                            set.history.begin() + set.history_offsets[i + 1]);
    add_row(out.rows, set.users[i], set.user_groups[i], history, set.line_numbers[i]);
    auto s = std::move(seen[static_cast<std::size_t>(set.user_groups[i])]);
    sort_unique(s);
    out.seen.push_back(std::move(s));
  }
  out.rows.user_group_count = static_cast<std::int64_t>(rows.size());
  out.rows.stats.samples = out.rows.size();
  return out;
}

/// Adds the items of the interaction log to each user's seen items (joined on the user id);
/// the log is read by users_from_log(), so it is checked the same way as for --all.
void add_log_items(RecommendUsers& u, const std::string& path, const Vocab& items,
                   const Vocab& users) {
  const RecommendUsers log = users_from_log(path, items, users, /*max_history=*/0);
  std::unordered_map<std::string, std::size_t> log_row;
  for (std::size_t r = 0; r < log.names.size(); ++r) log_row.emplace(log.names[r], r);
  for (std::size_t r = 0; r < u.names.size(); ++r) {
    const auto it = log_row.find(u.names[r]);
    if (it == log_row.end()) continue;
    const auto& more = log.seen[it->second];
    u.seen[r].insert(u.seen[r].end(), more.begin(), more.end());
    sort_unique(u.seen[r]);
  }
}

/// Appends one user's list to `text` in the requested format.
void format_list(std::string& text, const std::string& format, const std::string& user,
                 const Recommendation& rec, const Vocab& items) {
  if (format == "jsonl") {
    nlohmann::json line = {
        {"user", user}, {"items", nlohmann::json::array()}, {"scores", rec.scores}};
    for (const auto id : rec.items) line["items"].push_back(std::string(items.token(id)));
    text += line.dump() + "\n";
    return;
  }
  for (std::size_t j = 0; j < rec.items.size(); ++j) {
    text +=
        fmt::format("{}\t{}\t{}\t{:.9g}\n", user, j + 1, items.token(rec.items[j]), rec.scores[j]);
  }
}

/// Writes the lists of one block (each row's top K found in parallel, written in order).
void write_block(AtomicFileWriter& out, const RecommendRequest& r, const RecommendUsers& u,
                 const Vocab& items, std::int64_t begin, const torch::Tensor& scores) {
  const std::int64_t count = scores.size(0), n = scores.size(1);
  const float* sp = scores.data_ptr<float>();
  const std::vector<std::int32_t> none;
  std::vector<Recommendation> lists(static_cast<std::size_t>(count));
  at::parallel_for(0, count, 1, [&](std::int64_t first, std::int64_t end) {
    for (std::int64_t i = first; i < end; ++i) {
      const auto row = static_cast<std::size_t>(begin + i);
      lists[static_cast<std::size_t>(i)] =
          top_k(sp + i * n, n, Vocab::kReserved, r.exclude_seen ? u.seen[row] : none, r.k);
    }
  });
  std::string text;
  for (std::int64_t i = 0; i < count; ++i) {
    format_list(text, r.format, u.names[static_cast<std::size_t>(begin + i)],
                lists[static_cast<std::size_t>(i)], items);
  }
  out.write(text);
}

/// The listed candidates of each user (seen items left out unless --exclude none): one scoring
/// call per user. Returns the number of (user, item) pairs scored and of users with a list.
std::pair<std::int64_t, std::int64_t> recommend_listed(AtomicFileWriter& out,
                                                       const RecommendRequest& r,
                                                       const RecommendUsers& u, const Vocab& items,
                                                       RankingScorer& scorer, Progress& progress) {
  CandidateLists lists = read_candidate_lists(r.candidates, u.names, items);
  if (lists.unknown_items > 0 || lists.other_users > 0) {
    spdlog::warn(
        "{}: {} line(s) name an item the model does not know (left out), {} a user "
        "not among the users to recommend for (ignored)",
        r.candidates, lists.unknown_items, lists.other_users);
  }
  std::int64_t pairs = 0, listed = 0;
  const auto n = static_cast<std::int64_t>(u.names.size());
  for (std::int64_t i = 0; i < n; ++i) {
    auto& ids = lists.items[static_cast<std::size_t>(i)];
    if (r.exclude_seen) {
      const auto& seen = u.seen[static_cast<std::size_t>(i)];
      ids.erase(std::remove_if(ids.begin(), ids.end(),
                               [&](std::int32_t id) {
                                 return std::binary_search(seen.begin(), seen.end(), id);
                               }),
                ids.end());
    }
    if (!ids.empty()) {
      auto cands = torch::empty({1, static_cast<std::int64_t>(ids.size())}, torch::kInt64);
      std::copy(ids.begin(), ids.end(), cands.data_ptr<std::int64_t>());
      const auto scores = scorer.score(u.rows, i, 1, cands).to(torch::kFloat64).contiguous();
      std::string text;
      format_list(text, r.format, u.names[static_cast<std::size_t>(i)],
                  top_k_of(scores.data_ptr<double>(), ids, r.k), items);
      out.write(text);
      pairs += static_cast<std::int64_t>(ids.size());
      ++listed;
    }
    progress.update(i + 1, 0.0, 0.0);
  }
  return {pairs, listed};
}

}  // namespace

nlohmann::json run_recommend(const RecommendRequest& r) {
  if (r.k < 1) throw UsageError("--k: expected a list length >= 1, got " + std::to_string(r.k));
  if (r.format != "tsv" && r.format != "jsonl") {
    throw UsageError("--format: expected tsv or jsonl, got \"" + r.format + "\"");
  }
  if (r.all == !r.users.empty()) {
    throw UsageError("give either --users FILE (a sample file) or --all (every user of the log)");
  }
  if (r.output.empty()) throw UsageError("--output: required (a file, or - for standard output)");
  const auto started = std::chrono::steady_clock::now();
  const std::string checkpoint = resolve_checkpoint_path(r.checkpoint);
  const CheckpointMeta meta = read_checkpoint_meta(checkpoint);
  const Config config = scoring_config(meta.config, r.overrides);
  std::string log = r.interactions;
  if (log.empty() && r.all) {
    log = file_beside(config.data.train, "interactions.tsv");
    if (log.empty()) {
      throw UsageError("--all: no interactions.tsv beside " + config.data.train +
                       "; give the log with --interactions FILE");
    }
  }
  const auto dir = fs::path(checkpoint).parent_path();
  OutputGuard()
      .input(checkpoint, "--checkpoint")
      .input((dir / meta.items.file).lexically_normal().string(),
             "the checkpoint's item vocabulary")
      .input((dir / meta.users.file).lexically_normal().string(),
             "the checkpoint's user vocabulary")
      .input(r.users, "--users")
      .input(log, "--interactions")
      .input(r.candidates, "--candidates")
      .output(r.output, "--output");
  const torch::Device device = resolve_device(config.train.device);
  const int threads = configure_threads(config.train.threads);
  LoadedModel loaded = load_model(checkpoint, device);
  RecommendUsers users =
      r.all ? users_from_log(log, loaded.items, loaded.users, config.data.max_history)
            : users_from_samples(r.users, loaded, config);
  if (!r.all && !log.empty()) add_log_items(users, log, loaded.items, loaded.users);
  const std::int64_t n = users.rows.size();
  const std::int64_t v = loaded.items.size(), item_count = v - Vocab::kReserved;
  if (item_count < 1) throw DataError(checkpoint + ": the item vocabulary has no items");
  spdlog::info("recommending {} items to each of {} users from {} items ({}, {} thread(s))", r.k, n,
               item_count, device.str(), threads);
  RankingOptions ranking;
  auto scorer = model_scorer(loaded.model, device, ranking.pairs_per_batch);
  const std::int64_t block = scorer->rows_per_full_call(item_count, ranking.pairs_per_batch);
  AtomicFileWriter out(r.output, "recommendations");
  if (r.format == "tsv") out.write("user\trank\titem\tscore\n");
  // A log line about every tenth of the users (progress advances a block at a time).
  Progress progress("recommend", n, 0, std::max(block, n / 10 / block * block));
  progress.counting("users");
  const auto scoring_started = std::chrono::steady_clock::now();
  std::int64_t pairs = n * item_count, listed = n;
  if (!r.candidates.empty()) {
    std::tie(pairs, listed) = recommend_listed(out, r, users, loaded.items, *scorer, progress);
  }
  for (std::int64_t b = 0; r.candidates.empty() && b < n; b += block) {
    const std::int64_t count = std::min(block, n - b);
    const auto scores = scorer->score_all(users.rows, b, count, Vocab::kReserved, v)
                            .to(torch::kFloat32)
                            .contiguous();
    write_block(out, r, users, loaded.items, b, scores);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - scoring_started).count();
    progress.update(b + count, 0.0, secs > 0 ? static_cast<double>(b + count) / secs : 0.0);
  }
  progress.finish();
  out.commit();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - scoring_started).count();
  return {{"checkpoint", checkpoint},
          {"output", r.output},
          {"users", n},
          {"users_with_list", listed},
          {"items", item_count},
          {"candidates", r.candidates.empty() ? "all" : r.candidates},
          {"k", r.k},
          {"exclude", r.exclude_seen ? "seen" : "none"},
          {"scoring_seconds", seconds},
          {"users_per_second", seconds > 0 ? static_cast<double>(n) / seconds : 0.0},
          {"pairs_per_second", seconds > 0 ? static_cast<double>(pairs) / seconds : 0.0},
          {"wall_seconds",
           std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}};
}

}  // namespace attnrec
