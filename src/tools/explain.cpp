#include "attnrec/tools/explain.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "attnrec/data/dataset.hpp"
#include "attnrec/eval/attention_analysis.hpp"
#include "attnrec/eval/evaluator.hpp"
#include "attnrec/io/checkpoint.hpp"
#include "attnrec/io/outputs.hpp"
#include "attnrec/io/run_dir.hpp"
#include "attnrec/util/device.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/rng.hpp"

namespace attnrec {

namespace {

using nlohmann::json;

/// One explained sample: its window (what the model sees) and the variants scored for it.
struct Example {
  std::int64_t sample = 0;           ///< index in the file's SampleSet
  std::vector<std::int32_t> window;  ///< history items, oldest first
  std::int64_t offset = 0;           ///< file history positions before the window
  std::int64_t first_variant = 0;    ///< row of the original in the variants set; LOO follow
  double logit = 0.0;
  std::vector<double> weights;                    ///< per window position
  std::vector<double> loo;                        ///< logit - logit without the item
  std::vector<double> attention_only;             ///< logit - logit with the weight zeroed
  std::vector<std::vector<double>> head_weights;  ///< [head][position], multi-head only
  double uniform_logit = 0.0;                     ///< the logit with uniform attention weights
  std::vector<double> contribution;  ///< dot head: each position's exact share of the logit
  double rest = 0.0;                 ///< dot head: the logit's part no position owns
};

/// One batch's original rows (not leave-one-out variants) and their examples.
struct Originals {
  std::vector<std::int64_t> rows;  ///< batch rows
  std::vector<Example*> examples;
};

/// Per valid position of each original row: its attention weight (and each head's).
void record_weights(const Originals& o, const torch::Tensor& mask, const RecommenderOutput& out) {
  const auto weights =
      out.attention.defined() ? out.attention.to(torch::kCPU, torch::kFloat64) : torch::Tensor();
  const auto heads = out.head_attention.defined()
                         ? out.head_attention.to(torch::kCPU, torch::kFloat64)
                         : torch::Tensor();
  for (std::size_t k = 0; k < o.rows.size(); ++k) {
    Example& e = *o.examples[k];
    const auto r = o.rows[k];
    if (heads.defined()) e.head_weights.resize(static_cast<std::size_t>(heads.size(1)));
    for (std::int64_t t = 0; t < mask.size(1); ++t) {
      if (!mask[r][t].item<bool>()) continue;
      e.weights.push_back(weights.defined() ? weights[r][t].item<double>() : 0.0);
      for (std::size_t h = 0; h < e.head_weights.size(); ++h) {
        e.head_weights[h].push_back(heads[r][static_cast<std::int64_t>(h)][t].item<double>());
      }
    }
  }
}

/// The attention-only changes: each original row repeated once per valid position, that
/// position masked out of the attention (the encoder's states stay as they were).
void attention_only(Recommender& model, const Batch& b, const EncodedHistory& encoded,
                    const Originals& o, const torch::Tensor& mask) {
  std::vector<std::int64_t> rows, positions;
  std::vector<Example*> owners;
  for (std::size_t k = 0; k < o.rows.size(); ++k) {
    for (std::int64_t t = 0; t < mask.size(1); ++t) {
      if (!mask[o.rows[k]][t].item<bool>()) continue;
      rows.push_back(o.rows[k]);
      positions.push_back(t);
      owners.push_back(o.examples[k]);
    }
  }
  if (rows.empty()) return;
  const auto device = b.history.device();
  const auto row_t = torch::tensor(rows, torch::kInt64).to(device);
  auto h = encoded.select_rows(row_t);
  h.mask = h.mask.clone();
  h.mask.index_put_({torch::arange(static_cast<std::int64_t>(rows.size()), device),
                     torch::tensor(positions, torch::kInt64).to(device)},
                    false);
  const auto item = b.item.defined() ? b.item.index_select(0, row_t) : torch::Tensor();
  const auto masked = model->score(h, item).logits.to(torch::kCPU, torch::kFloat64);
  for (std::size_t k = 0; k < rows.size(); ++k) {
    owners[k]->attention_only.push_back(masked[static_cast<std::int64_t>(k)].item<double>());
  }
}

/// The uniform-attention logit and, for the dot head, the exact split by position.
void record_attribution(Recommender& model, const Batch& b, const EncodedHistory& encoded,
                        const Originals& o, const torch::Tensor& mask) {
  const auto device = b.history.device();
  const auto row_t = torch::tensor(o.rows, torch::kInt64).to(device);
  const auto item = b.item.defined() ? b.item.index_select(0, row_t) : torch::Tensor();
  const auto a = model->attribute(encoded.select_rows(row_t), item);
  const auto uniform = a.uniform_logits.to(torch::kCPU, torch::kFloat64);
  const auto split = a.contributions.defined() ? a.contributions.to(torch::kCPU, torch::kFloat64)
                                               : torch::Tensor();
  const auto rest = a.rest.defined() ? a.rest.to(torch::kCPU, torch::kFloat64) : torch::Tensor();
  for (std::size_t k = 0; k < o.rows.size(); ++k) {
    Example& e = *o.examples[k];
    const auto i = static_cast<std::int64_t>(k);
    e.uniform_logit = uniform[i].item<double>();
    if (!split.defined()) continue;
    e.rest = rest[i].item<double>();
    for (std::int64_t t = 0; t < mask.size(1); ++t) {
      if (mask[o.rows[k]][t].item<bool>()) e.contribution.push_back(split[i][t].item<double>());
    }
  }
}

/// The variants of every example in one SampleSet: the window, then the window without each
/// position in turn.
SampleSet build_variants(const SampleSet& set, std::vector<Example>& examples,
                         std::int64_t max_history) {
  SampleSet v;
  v.source = set.source;
  v.has_labels = false;
  v.has_items = set.has_items;
  v.has_users = set.has_users;
  v.history_offsets.push_back(0);
  const auto add = [&](const Example& e, std::int64_t skip) {
    if (set.has_items) v.items.push_back(set.items[e.sample]);
    if (set.has_users) {
      v.users.push_back(set.users[e.sample]);
      v.user_groups.push_back(set.user_groups[e.sample]);
    }
    for (std::size_t t = 0; t < e.window.size(); ++t) {
      if (static_cast<std::int64_t>(t) != skip) v.history.push_back(e.window[t]);
    }
    v.history_offsets.push_back(static_cast<std::int64_t>(v.history.size()));
    v.line_numbers.push_back(set.line_numbers[e.sample]);
  };
  for (auto& e : examples) {
    const auto from = set.history_offsets[e.sample], to = set.history_offsets[e.sample + 1];
    e.offset = std::max<std::int64_t>(0, (to - from) - max_history);
    e.window.assign(set.history.begin() + from + e.offset, set.history.begin() + to);
    e.first_variant = v.size();
    add(e, -1);
    for (std::size_t t = 0; t < e.window.size(); ++t) add(e, static_cast<std::int64_t>(t));
  }
  v.user_group_count = set.user_group_count;
  return v;
}

/// Scores every variant; for the originals also the attention weights, the attention-only
/// changes, the uniform-attention logit and (dot head) the exact split by position.
void score_variants(Recommender& model, const SampleSet& variants, std::vector<Example>& examples,
                    const EvalOptions& options) {
  std::vector<double> logits(static_cast<std::size_t>(variants.size()));
  std::map<std::int64_t, Example*> originals;
  for (auto& e : examples) originals[e.first_variant] = &e;
  score(model, variants, options, [&](const Batch& b, const RecommenderOutput& out) {
    const auto index = b.index.cpu();
    const auto logit = out.logits.to(torch::kCPU, torch::kFloat64);
    const auto mask = b.mask.cpu();
    Originals o;
    for (std::int64_t r = 0; r < b.size(); ++r) {
      const auto row = index[r].item<std::int64_t>();
      logits[static_cast<std::size_t>(row)] = logit[r].item<double>();
      const auto it = originals.find(row);
      if (it == originals.end()) continue;
      o.rows.push_back(r);
      o.examples.push_back(it->second);
    }
    if (o.rows.empty()) return;
    record_weights(o, mask, out);
    const auto encoded = model->encode(b);
    attention_only(model, b, encoded, o, mask);
    record_attribution(model, b, encoded, o, mask);
  });
  for (auto& e : examples) {
    e.logit = logits[static_cast<std::size_t>(e.first_variant)];
    for (std::size_t t = 0; t < e.window.size(); ++t) {
      e.loo.push_back(e.logit - logits[static_cast<std::size_t>(e.first_variant) + 1 + t]);
    }
    for (auto& v : e.attention_only) v = e.logit - v;
    // The batch's valid positions are the window's, in order; a mismatch is a bug.
    TORCH_CHECK(e.weights.size() == e.window.size(), "explain: expected ", e.window.size(),
                " attention weights, got ", e.weights.size());
  }
}

std::size_t argmax(const std::vector<double>& v) {
  return static_cast<std::size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}
std::size_t argmin(const std::vector<double>& v) {
  return static_cast<std::size_t>(std::min_element(v.begin(), v.end()) - v.begin());
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::vector<std::int64_t> chosen_samples(const ExplainRequest& r, const SampleSet& set) {
  std::vector<std::int64_t> chosen;
  if (r.lines.empty()) {
    const auto n = r.limit > 0 ? std::min(r.limit, set.size()) : set.size();
    for (std::int64_t i = 0; i < n; ++i) chosen.push_back(i);
    return chosen;
  }
  std::map<std::int64_t, std::int64_t> by_line;
  for (std::int64_t i = 0; i < set.size(); ++i) by_line[set.line_numbers[i]] = i;
  for (const auto line : parse_line_list(r.lines, "--lines")) {
    const auto it = by_line.find(line);
    if (it == by_line.end()) {
      throw UsageError(
          fmt::format("--lines: {}:{} is not a sample line (the header, a skipped "
                      "line, or past the end: the file has {} samples)",
                      r.scoring.data, line, set.size()));
    }
    chosen.push_back(it->second);
  }
  return chosen;
}

}  // namespace

double kendall_tau(const std::vector<double>& a, const std::vector<double>& b) {
  double concordant = 0, discordant = 0, ties_a = 0, ties_b = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (std::size_t j = i + 1; j < a.size(); ++j) {
      const double da = a[i] - a[j], db = b[i] - b[j];
      if (da == 0 && db == 0) continue;
      if (da == 0) {
        ++ties_a;
      } else if (db == 0) {
        ++ties_b;
      } else if ((da > 0) == (db > 0)) {
        ++concordant;
      } else {
        ++discordant;
      }
    }
  }
  const double denominator =
      std::sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b));
  return denominator > 0 ? (concordant - discordant) / denominator : 0.0;
}

std::vector<std::int64_t> parse_line_list(const std::string& text, const std::string& what) {
  std::vector<std::int64_t> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    const std::string part =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto dash = part.find('-');
    const std::string lo = part.substr(0, dash),
                      hi = dash == std::string::npos ? lo : part.substr(dash + 1);
    const auto digits = [](const std::string& s) {
      return !s.empty() && s.size() <= 12 && s.find_first_not_of("0123456789") == std::string::npos;
    };
    if (!digits(lo) || !digits(hi) || std::stoll(lo) < 1 || std::stoll(hi) < std::stoll(lo) ||
        std::stoll(hi) - std::stoll(lo) > 10'000'000) {
      throw UsageError(
          fmt::format("{}: \"{}\" is not a line number or a range a-b (1-based, "
                      "increasing), e.g. 3,7,10-20",
                      what, part));
    }
    for (auto n = std::stoll(lo); n <= std::stoll(hi); ++n) out.push_back(n);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

namespace {

json example_json(const Example& e, const SampleSet& set, const LoadedModel& m,
                  const std::vector<std::string>& columns, std::size_t random_position) {
  json positions = json::array();
  const auto w = static_cast<std::int64_t>(e.window.size());
  for (std::int64_t t = 0; t < w; ++t) {
    json p = {{"position", t + e.offset},
              {"recency", w - 1 - t},
              {"item", std::string(m.items.token(e.window[t]))},
              {"weight", e.weights[t]},
              {"loo_delta", e.loo[t]},
              {"attention_only_delta", e.attention_only[t]}};
    if (!e.head_weights.empty()) {
      p["head_weights"] = json::array();
      for (const auto& head : e.head_weights) p["head_weights"].push_back(head[t]);
    }
    if (!e.contribution.empty()) p["contribution"] = e.contribution[t];
    positions.push_back(std::move(p));
  }
  std::vector<std::size_t> by_weight(e.window.size());
  std::iota(by_weight.begin(), by_weight.end(), std::size_t{0});
  std::stable_sort(by_weight.begin(), by_weight.end(),
                   [&](std::size_t a, std::size_t b) { return e.weights[a] > e.weights[b]; });
  const auto has = [&](const std::string& role) {
    return std::find(columns.begin(), columns.end(), role) != columns.end();
  };
  json out = {{"line", set.line_numbers[e.sample]},
              {"logit", e.logit},
              {"probability", 1.0 / (1.0 + std::exp(-e.logit))},
              {"history_length", w},
              {"positions", positions},
              {"by_weight", by_weight}};
  if (has("user") && set.has_users) out["user"] = std::string(m.users.token(set.users[e.sample]));
  if (set.has_items) out["candidate"] = std::string(m.items.token(set.items[e.sample]));
  if (set.has_labels) out["label"] = set.labels[e.sample];
  out["uniform_attention_logit"] = e.uniform_logit;
  if (!e.contribution.empty()) out["contribution_rest"] = e.rest;
  if (!e.head_weights.empty() && w > 0) {
    out["heads"] = json::array();
    for (std::size_t h = 0; h < e.head_weights.size(); ++h) {
      const auto top = argmax(e.head_weights[h]);
      out["heads"].push_back({{"head", h},
                              {"top_position", static_cast<std::int64_t>(top) + e.offset},
                              {"item", std::string(m.items.token(e.window[top]))},
                              {"weight", e.head_weights[h][top]}});
    }
  }
  if (w >= 2) {
    out["controls"] = {
        {"top_weighted_loo_delta", e.loo[by_weight.front()]},
        {"random_loo_delta", e.loo[random_position]},
        {"random_position", static_cast<std::int64_t>(random_position) + e.offset},
        {"lowest_weighted_loo_delta", e.loo[argmin(e.weights)]},
        {"uniform_attention_delta", e.logit - e.uniform_logit},
        {"largest_loo_position", static_cast<std::int64_t>(argmax(e.loo)) + e.offset}};
    std::vector<double> effect(e.loo.size());
    std::transform(e.loo.begin(), e.loo.end(), effect.begin(),
                   [](double d) { return std::abs(d); });
    out["kendall_tau"] = kendall_tau(e.weights, effect);  // weight vs size of the effect
  }
  return out;
}

json summarise(const std::vector<json>& examples,
               const std::vector<std::vector<std::int64_t>>* planted,
               const std::vector<Example>& raw) {
  std::vector<double> top, random, lowest, uniform, taus, planted_effect, other_effect;
  double wins = 0, hits = 0, planted_examples = 0, chance = 0;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const auto& x = examples[i];
    if (!x.contains("controls")) continue;
    const double a = std::abs(x["controls"]["top_weighted_loo_delta"].get<double>());
    const double b = std::abs(x["controls"]["random_loo_delta"].get<double>());
    top.push_back(a);
    random.push_back(b);
    lowest.push_back(std::abs(x["controls"]["lowest_weighted_loo_delta"].get<double>()));
    uniform.push_back(std::abs(x["controls"]["uniform_attention_delta"].get<double>()));
    wins += a > b ? 1.0 : a == b ? 0.5 : 0.0;
    taus.push_back(x["kendall_tau"].get<double>());
    if (planted) {
      const auto& p = (*planted)[static_cast<std::size_t>(raw[i].sample)];
      const std::int64_t best = x["positions"][x["by_weight"][0].get<std::size_t>()]["position"];
      if (!p.empty() && p.size() * 2 <= raw[i].window.size()) {
        ++planted_examples;
        hits += std::find(p.begin(), p.end(), best) != p.end();
        chance += static_cast<double>(p.size()) / static_cast<double>(raw[i].window.size());
        for (const auto& position : x["positions"]) {
          const bool is_planted = std::find(p.begin(), p.end(), position["position"]) != p.end();
          (is_planted ? planted_effect : other_effect)
              .push_back(std::abs(position["loo_delta"].get<double>()));
        }
      }
    }
  }
  const auto mean = [](const std::vector<double>& v) {
    return v.empty() ? 0.0
                     : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  };
  json s = {{"examples", examples.size()},
            {"compared", top.size()},
            {"mean_abs_loo_delta_top_weighted", mean(top)},
            {"mean_abs_loo_delta_random", mean(random)},
            {"mean_abs_loo_delta_lowest_weighted", mean(lowest)},
            {"mean_abs_uniform_attention_delta", mean(uniform)},
            {"share_top_weighted_matters_more",
             top.empty() ? 0.0 : wins / static_cast<double>(top.size())},
            {"median_kendall_tau", top.empty() ? json() : json(median(taus))},
            {"mean_kendall_tau", mean(taus)}};
  if (planted) {
    s["planted_examples"] = planted_examples;
    s["planted_hit_rate"] = planted_examples > 0 ? json(hits / planted_examples) : json();
    // What a uniformly random pick of the top position would hit.
    s["planted_hit_rate_chance"] = planted_examples > 0 ? json(chance / planted_examples) : json();
    s["mean_abs_loo_delta_planted"] = mean(planted_effect);
    s["mean_abs_loo_delta_not_planted"] = mean(other_effect);
  }
  return s;
}

}  // namespace

json run_explain(const ExplainRequest& r) {
  const std::string checkpoint = resolve_checkpoint_path(r.scoring.checkpoint);
  const auto meta = read_checkpoint_meta(checkpoint);
  const Config config = scoring_config(meta.config, r.scoring.overrides);
  OutputGuard guard;
  guard.input(checkpoint, "--checkpoint")
      .input(r.scoring.data, "--data")
      .input(r.oracle, "--oracle");
  const auto device = resolve_device(config.train.device);
  configure_threads(config.train.threads);
  LoadedModel m = load_model(checkpoint, device);
  std::vector<std::string> columns;
  const SampleSet set = read_for_scoring(r.scoring.data, m, config, /*need_label=*/false,
                                         /*label_optional=*/true, &columns);
  std::vector<std::vector<std::int64_t>> planted;
  if (!r.oracle.empty()) {
    planted = read_planted_positions(r.oracle);
    if (static_cast<std::int64_t>(planted.size()) != set.size()) {
      throw DataError(
          fmt::format("--oracle {}: planted positions for {} samples, but {} has {}; "
                      "pass the oracle.json generated with this test file",
                      r.oracle, planted.size(), r.scoring.data, set.size()));
    }
  }
  std::vector<Example> examples;
  for (const auto i : chosen_samples(r, set)) {
    examples.emplace_back();
    examples.back().sample = i;
  }
  const SampleSet variants = build_variants(set, examples, m.config.data.max_history);
  spdlog::info("explaining {} samples of {}: {} forward passes", examples.size(), r.scoring.data,
               variants.size());
  score_variants(m.model, variants, examples,
                 EvalOptions().with_batch_size(config.eval.batch_size).with_device(device));
  std::vector<json> explained;
  for (const auto& e : examples) {
    // The random control: a position other than the top-weighted one, from (seed, sample).
    Rng rng(Rng::mix(r.seed, static_cast<std::uint64_t>(e.sample)));
    std::size_t random_position = 0;
    if (e.window.size() >= 2) {
      const auto top = argmax(e.weights);
      random_position = static_cast<std::size_t>(rng.uniform_int(e.window.size() - 1));
      if (random_position >= top) ++random_position;
    }
    explained.push_back(example_json(e, set, m, columns, random_position));
  }
  json out = {{"checkpoint", m.checkpoint_path},
              {"data", r.scoring.data},
              {"summary", summarise(explained, r.oracle.empty() ? nullptr : &planted, examples)}};
  if (r.examples) out["examples"] = explained;
  return out;
}

std::string format_explanations(const json& result, std::int64_t top_k) {
  std::string out;
  for (const auto& x : result.value("examples", json::array())) {
    out += fmt::format(
        "line {}{}{}: p = {:.4f} (logit {:+.4f}){}\n", x["line"].get<std::int64_t>(),
        x.contains("user") ? " user " + x["user"].get<std::string>() : "",
        x.contains("candidate") ? " -> " + x["candidate"].get<std::string>() : "",
        x["probability"].get<double>(), x["logit"].get<double>(),
        x.contains("kendall_tau")
            ? fmt::format(", tau(weight, |leave-one-out|) {:+.2f}", x["kendall_tau"].get<double>())
            : "");
    const bool split = x.contains("contribution_rest");
    out += fmt::format("  {:>4} {:>7} {:<16} {:>8} {:>14} {:>16}{}\n", "rank", "recency", "item",
                       "weight", "leave-one-out", "attention-only",
                       split ? fmt::format(" {:>13}", "contribution") : "");
    const auto& order = x["by_weight"];
    for (std::size_t k = 0; k < order.size() && static_cast<std::int64_t>(k) < top_k; ++k) {
      const auto& p = x["positions"][order[k].get<std::size_t>()];
      out += fmt::format("  {:>4} {:>7} {:<16} {:>8.4f} {:>+14.4f} {:>+16.4f}{}\n", k + 1,
                         p["recency"].get<std::int64_t>(), p["item"].get<std::string>(),
                         p["weight"].get<double>(), p["loo_delta"].get<double>(),
                         p["attention_only_delta"].get<double>(),
                         split ? fmt::format(" {:>+13.4f}", p["contribution"].get<double>()) : "");
    }
    if (x.contains("heads")) {
      std::string heads;
      for (const auto& h : x["heads"]) {
        heads += fmt::format("{}{} {} ({:.3f})", heads.empty() ? "" : ", ",
                             h["head"].get<std::int64_t>(), h["item"].get<std::string>(),
                             h["weight"].get<double>());
      }
      out += "  each head's top item: " + heads + "\n";
    }
    if (x.contains("controls")) {
      const auto& c = x["controls"];
      out += fmt::format(
          "  controls: leave-one-out of the top-weighted item {:+.4f}, a random "
          "item {:+.4f}, the lowest-weighted item {:+.4f}; uniform attention changes the "
          "logit by {:+.4f}\n",
          c["top_weighted_loo_delta"].get<double>(), c["random_loo_delta"].get<double>(),
          c["lowest_weighted_loo_delta"].get<double>(),
          -c["uniform_attention_delta"].get<double>());
    }
  }
  const auto& s = result["summary"];
  out += fmt::format(
      "summary over {} samples ({} with two history items or more): mean |leave-one-out change| "
      "of the top-weighted item {:.4f} vs a random item {:.4f} vs the lowest-weighted item {:.4f}; "
      "the top-weighted item matters more than the random one in {:.1f}% of them; median tau {}; "
      "mean |logit change| with uniform attention {:.4f}\n",
      s["examples"].get<std::int64_t>(), s["compared"].get<std::int64_t>(),
      s["mean_abs_loo_delta_top_weighted"].get<double>(),
      s["mean_abs_loo_delta_random"].get<double>(),
      s["mean_abs_loo_delta_lowest_weighted"].get<double>(),
      100.0 * s["share_top_weighted_matters_more"].get<double>(),
      s["median_kendall_tau"].is_number()
          ? fmt::format("{:+.3f}", s["median_kendall_tau"].get<double>())
          : std::string("n/a"),
      s["mean_abs_uniform_attention_delta"].get<double>());
  if (s.contains("planted_hit_rate") && s["planted_hit_rate"].is_number()) {
    out += fmt::format(
        "planted positions: the top-weighted item is planted in {:.1f}% of {} samples (chance "
        "{:.1f}%); mean "
        "|leave-one-out change| {:.4f} at planted positions, {:.4f} elsewhere\n",
        100.0 * s["planted_hit_rate"].get<double>(), s["planted_examples"].get<double>(),
        100.0 * s["planted_hit_rate_chance"].get<double>(),
        s["mean_abs_loo_delta_planted"].get<double>(),
        s["mean_abs_loo_delta_not_planted"].get<double>());
  }
  return out;
}

}  // namespace attnrec
