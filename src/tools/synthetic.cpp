#include "attnrec/tools/synthetic.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "attnrec/eval/metrics.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/hash.hpp"
#include "attnrec/util/rng.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

void SyntheticOptions::validate() const {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw UsageError("generate: " + message);
  };
  require(users >= 1, "--users must be >= 1");
  require(categories >= 1, "--categories must be >= 1");
  require(items >= categories, "--items must be >= --categories (every category needs an item)");
  require(train >= 1 && valid >= 1 && test >= 1, "--train, --valid and --test must be >= 1");
  require(min_history >= 0, "--min-history must be >= 0");
  require(max_history >= min_history, "--max-history must be >= --min-history");
  require(min_interests >= 1 && max_interests >= min_interests,
          "need 1 <= --min-interests <= --max-interests");
  require(
      max_interests <= categories,
      fmt::format("--max-interests ({}) must be <= --categories ({})", max_interests, categories));
  require(in_interest >= 0 && in_interest <= 1,
          fmt::format("--in-interest must be in [0, 1], got {}", in_interest));
  // Sampling loops draw until a condition holds: a NaN or infinite parameter would never let
  // them end, so every real-valued option is checked here.
  for (const auto& [flag, value] : {std::pair<const char*, double>{"--zipf", zipf},
                                    {"--noise", noise},
                                    {"--slope", slope},
                                    {"--bias", bias},
                                    {"--popularity-weight", popularity_weight}}) {
    require(std::isfinite(value), fmt::format("{} must be a finite number, got {}", flag, value));
  }
  require(zipf >= 0 && zipf <= 10, fmt::format("--zipf must be in [0, 10], got {}", zipf));
  require(noise >= 0 && noise <= 100, fmt::format("--noise must be in [0, 100], got {}", noise));
}

nlohmann::json SyntheticOptions::to_json() const {
  return {{"users", users},
          {"items", items},
          {"categories", categories},
          {"train", train},
          {"valid", valid},
          {"test", test},
          {"min_history", min_history},
          {"max_history", max_history},
          {"min_interests", min_interests},
          {"max_interests", max_interests},
          {"zipf", zipf},
          {"noise", noise},
          {"slope", slope},
          {"bias", bias},
          {"popularity_weight", popularity_weight},
          {"in_interest", in_interest},
          {"seed", seed}};
}

namespace {

struct World {
  std::vector<std::int64_t> category;              // per item
  std::vector<std::vector<double>> vec;            // per item, unit length
  std::vector<double> log_pop;                     // per item, centred
  std::vector<std::vector<std::int64_t>> members;  // per category
  std::vector<std::vector<double>> member_cdf;     // per category, popularity-weighted
  std::vector<double> global_cdf;
  // per user
  std::vector<std::vector<std::int64_t>> interests;
  std::vector<std::vector<double>> interest_cdf;
};

std::vector<double> cumulative(const std::vector<double>& w) {
  std::vector<double> cdf(w.size());
  std::partial_sum(w.begin(), w.end(), cdf.begin());
  return cdf;
}

World make_world(const SyntheticOptions& o, Rng& rng) {
  World w;
  const auto n = static_cast<std::size_t>(o.items);
  const auto d = static_cast<std::size_t>(o.categories);
  // Popularity rank is a random permutation, independent of the category.
  std::vector<std::int64_t> rank(n);
  std::iota(rank.begin(), rank.end(), 1);
  rng.shuffle(rank);
  std::vector<double> weight(n);
  double mean_log = 0;
  w.log_pop.resize(n);
  for (std::size_t j = 0; j < n; ++j) {
    weight[j] = std::pow(static_cast<double>(rank[j]), -o.zipf);
    w.log_pop[j] = std::log(weight[j]);
    mean_log += w.log_pop[j] / static_cast<double>(n);
  }
  double var = 0;
  for (auto& l : w.log_pop) {
    l -= mean_log;
    var += l * l / static_cast<double>(n);
  }
  const double sd = var > 0 ? std::sqrt(var) : 1.0;
  for (auto& l : w.log_pop) l /= sd;
  w.global_cdf = cumulative(weight);

  w.category.resize(n);
  w.members.resize(d);
  w.vec.resize(n);
  for (std::size_t j = 0; j < n; ++j) {
    // The first `categories` items cover every category once; the rest are random.
    w.category[j] =
        j < d ? static_cast<std::int64_t>(j) : static_cast<std::int64_t>(rng.uniform_int(d));
    w.members[w.category[j]].push_back(static_cast<std::int64_t>(j));
    std::vector<double> v(d);
    double norm = 0;
    for (std::size_t k = 0; k < d; ++k) {
      v[k] = rng.normal() * o.noise / std::sqrt(static_cast<double>(d)) +
             (k == static_cast<std::size_t>(w.category[j]) ? 1.0 : 0.0);
      norm += v[k] * v[k];
    }
    for (auto& x : v) x /= std::sqrt(norm);
    w.vec[j] = std::move(v);
  }
  w.member_cdf.resize(d);
  for (std::size_t c = 0; c < d; ++c) {
    std::vector<double> cw;
    for (auto j : w.members[c]) cw.push_back(weight[j]);
    w.member_cdf[c] = cumulative(cw);
  }

  const auto users = static_cast<std::size_t>(o.users);
  w.interests.resize(users);
  w.interest_cdf.resize(users);
  for (std::size_t u = 0; u < users; ++u) {
    const auto k = static_cast<std::size_t>(o.min_interests +
                                            rng.uniform_int(o.max_interests - o.min_interests + 1));
    std::vector<std::int64_t> cats(d);
    std::iota(cats.begin(), cats.end(), 0);
    rng.shuffle(cats);
    cats.resize(k);
    // Skewed interest weights: minor interests leave few items in a history, which is where
    // pooling fails and attention helps.
    std::vector<double> iw(k);
    for (auto& x : iw) {
      const double e = -std::log(std::max(rng.uniform(), 1e-12));
      x = e * e;
    }
    w.interests[u] = std::move(cats);
    w.interest_cdf[u] = cumulative(iw);
  }
  return w;
}

std::int64_t pick_in_category(const World& w, std::int64_t c, Rng& rng) {
  return w.members[c][rng.categorical(w.member_cdf[c])];
}

double similarity(const World& w, std::int64_t a, std::int64_t b) {
  double s = 0;
  for (std::size_t k = 0; k < w.vec[a].size(); ++k) s += w.vec[a][k] * w.vec[b][k];
  return s;
}

struct SplitResult {
  nlohmann::json metrics;
  nlohmann::json planted = nlohmann::json::array();
  nlohmann::json best = nlohmann::json::array();
  std::string sha256;  ///< of the file written
};

SplitResult write_split(const std::string& path, std::int64_t samples, const World& w,
                        const SyntheticOptions& o, Rng& rng) {
  std::string out = "label\tuser\titem\thistory\n";
  std::vector<double> p_true;
  std::vector<std::uint8_t> labels;
  SplitResult result;
  std::vector<std::int64_t> history;
  double history_total = 0;
  for (std::int64_t s = 0; s < samples; ++s) {
    const auto u = static_cast<std::int64_t>(rng.uniform_int(o.users));
    const auto len = static_cast<std::int64_t>(o.min_history +
                                               rng.uniform_int(o.max_history - o.min_history + 1));
    history.clear();
    for (std::int64_t t = 0; t < len; ++t) {
      const auto c = w.interests[u][rng.categorical(w.interest_cdf[u])];
      history.push_back(pick_in_category(w, c, rng));
    }
    std::int64_t item;
    if (rng.uniform() < o.in_interest) {
      item = pick_in_category(w, w.interests[u][rng.categorical(w.interest_cdf[u])], rng);
    } else {
      item = static_cast<std::int64_t>(rng.categorical(w.global_cdf));
    }
    double best = 0.0;  // an empty history has no match
    std::int64_t best_pos = -1;
    nlohmann::json planted = nlohmann::json::array();
    for (std::int64_t t = 0; t < len; ++t) {
      const double sim = similarity(w, item, history[t]);
      if (best_pos < 0 || sim >= best) {
        best = sim;
        best_pos = t;
      }
      if (w.category[history[t]] == w.category[item]) planted.push_back(t);
    }
    const double logit = o.slope * best + o.popularity_weight * w.log_pop[item] + o.bias;
    const double p = 1.0 / (1.0 + std::exp(-logit));
    const std::uint8_t label = rng.uniform() < p ? 1 : 0;
    p_true.push_back(p);
    labels.push_back(label);
    result.planted.push_back(std::move(planted));
    result.best.push_back(best_pos);
    history_total += static_cast<double>(len);

    out += fmt::format("{}\tu{}\ti{}\t", label, u, item);
    for (std::int64_t t = 0; t < len; ++t) {
      if (t) out += ',';
      out += fmt::format("i{}", history[t]);
    }
    out += '\n';
  }
  write_file_atomic(path, out);
  result.sha256 = sha256_hex(out);
  const auto a = auc(p_true, labels);
  const double positives = std::accumulate(labels.begin(), labels.end(), 0.0);
  result.metrics = {{"auc", a ? nlohmann::json(*a) : nlohmann::json()},
                    {"logloss", logloss(p_true, labels)},
                    {"samples", samples},
                    {"positive_rate", positives / static_cast<double>(samples)},
                    {"mean_history", history_total / static_cast<double>(samples)}};
  return result;
}

/// protocol.json of generated data: how its splits and labels came about, in the fields that
/// `evaluate` reads from preprocess's protocol.json (split.protocol, options.seed, negatives).
nlohmann::json synthetic_protocol(const SyntheticOptions& o, const nlohmann::json& files) {
  return {
      {"attnrec_protocol_version", 1},
      {"format", "attnrec synthetic v1"},
      {"input", nullptr},
      {"options", o.to_json()},
      {"split",
       {{"protocol", "synthetic"},
        {"description",
         "train, valid and test samples are drawn independently from one generated world (the "
         "same users, items and interests), each split from its own random stream; no time "
         "order, so no split can leak a later event into an earlier one"}}},
      {"negatives",
       {{"per_positive", nullptr},
        {"sampling", "none"},
        {"description",
         "labels are drawn from the true click probability (oracle.json holds its metrics); no "
         "negatives are sampled"}}},
      {"ranking_candidates", nullptr},
      {"outputs_sha256", files},
  };
}

}  // namespace

nlohmann::json generate_synthetic(const std::string& out_dir, const SyntheticOptions& o) {
  o.validate();
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) throw IoError(out_dir + ": cannot create directory: " + ec.message());
  Rng rng(o.seed);
  const World world = make_world(o, rng);
  // Each split draws from its own stream so that changing one split's size leaves the others
  // unchanged.
  Rng train_rng(Rng::mix(o.seed, 1)), valid_rng(Rng::mix(o.seed, 2)), test_rng(Rng::mix(o.seed, 3));
  const auto train = write_split(out_dir + "/train.tsv", o.train, world, o, train_rng);
  const auto valid = write_split(out_dir + "/valid.tsv", o.valid, world, o, valid_rng);
  auto test = write_split(out_dir + "/test.tsv", o.test, world, o, test_rng);
  nlohmann::json oracle = {
      {"generator", "attnrec synthetic v1"},
      {"options", o.to_json()},
      {"description",
       "Metrics of the true click probabilities (Bayes-optimal). test_planted_positions[i] "
       "lists the 0-based history positions of test sample i whose item shares the candidate's "
       "category; test_best_positions[i] is the position of the history item most similar to "
       "the candidate (-1 for an empty history)."},
      {"train", train.metrics},
      {"valid", valid.metrics},
      {"test", test.metrics},
      {"files_sha256",
       {{"train.tsv", train.sha256}, {"valid.tsv", valid.sha256}, {"test.tsv", test.sha256}}},
      {"test_planted_positions", std::move(test.planted)},
      {"test_best_positions", std::move(test.best)},
  };
  write_file_atomic(out_dir + "/oracle.json", oracle.dump(1) + "\n");
  write_file_atomic(out_dir + "/protocol.json",
                    synthetic_protocol(o, oracle["files_sha256"]).dump(2) + "\n");
  return oracle;
}

void LogOptions::validate() const {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw UsageError("generate --log: " + message);
  };
  require(users >= 1 && categories >= 1 && items >= categories,
          "need --users >= 1 and --items >= --categories >= 1");
  require(min_events >= 1 && max_events >= min_events, "need 1 <= --min-events <= --max-events");
  require(max_events <= items / 2, "--max-events must be <= --items / 2 (no repeated items)");
  require(stay >= 0 && stay <= 1 && explore >= 0 && explore <= 1,
          fmt::format("--stay must be in [0, 1], got {}", stay));
  require(std::isfinite(zipf) && zipf >= 0 && zipf <= 10,
          fmt::format("zipf must be in [0, 10], got {}", zipf));
  require(format == "movielens" || format == "taobao",
          "--log-format must be movielens or taobao, got \"" + format + "\"");
}

nlohmann::json generate_interaction_log(const std::string& path, const LogOptions& lo) {
  lo.validate();
  SyntheticOptions so;
  so.users = lo.users;
  so.items = lo.items;
  so.categories = lo.categories;
  so.zipf = lo.zipf;
  so.min_interests = 2;
  so.max_interests = std::min<std::int64_t>(5, lo.categories);
  so.min_interests = std::min(so.min_interests, so.max_interests);
  so.seed = lo.seed;
  Rng rng(lo.seed);
  const World w = make_world(so, rng);
  AtomicFileWriter out(path, "interaction log");
  std::int64_t events = 0;
  std::string line;
  std::vector<std::int64_t> seen;
  for (std::int64_t u = 0; u < lo.users; ++u) {
    const auto n = lo.min_events +
                   static_cast<std::int64_t>(rng.uniform_int(lo.max_events - lo.min_events + 1));
    // About one year of activity starting anywhere in 2020; gaps of minutes to days, and some
    // events in the same second (ties the preprocessor must order by file position).
    std::int64_t t = 1577836800 + static_cast<std::int64_t>(rng.uniform_int(365 * 86400));
    auto c = w.interests[u][rng.categorical(w.interest_cdf[u])];
    seen.clear();
    for (std::int64_t k = 0; k < n; ++k) {
      bool explore = rng.uniform() < lo.explore;
      if (!explore && rng.uniform() >= lo.stay)
        c = w.interests[u][rng.categorical(w.interest_cdf[u])];
      std::int64_t item = -1;
      for (int attempt = 0; attempt < 50; ++attempt) {
        const std::int64_t cand = explore ? static_cast<std::int64_t>(rng.categorical(w.global_cdf))
                                          : pick_in_category(w, c, rng);
        if (std::find(seen.begin(), seen.end(), cand) == seen.end()) {
          item = cand;
          break;
        }
      }
      if (item < 0) continue;  // this interest is exhausted for the user
      seen.push_back(item);
      const double r = rng.uniform();
      const int rating = explore ? (r < 0.7 ? 1 + static_cast<int>(rng.uniform_int(3)) : 4)
                                 : (r < 0.9 ? 4 + static_cast<int>(rng.uniform_int(2)) : 3);
      if (rng.uniform() > 0.05) t += 60 + static_cast<std::int64_t>(rng.uniform_int(3 * 86400));
      line.clear();
      if (lo.format == "movielens") {
        fmt::format_to(std::back_inserter(line), "{}::{}::{}::{}\n", u + 1, item + 1, rating, t);
      } else {
        fmt::format_to(std::back_inserter(line), "{},{},{},{},{}\n", u + 1, item + 1,
                       w.category[item] + 1, rating >= 4 ? "pv" : "cart", t);
      }
      out.write(line);
      ++events;
    }
  }
  out.commit();
  return {{"users", lo.users}, {"items", lo.items}, {"events", events}};
}

}  // namespace attnrec
