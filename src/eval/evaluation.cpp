#include "attnrec/eval/evaluation.hpp"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "attnrec/config/fields.hpp"
#include "attnrec/eval/attention_analysis.hpp"
#include "attnrec/eval/evaluator.hpp"
#include "attnrec/eval/ranking_eval.hpp"
#include "attnrec/io/checkpoint.hpp"
#include "attnrec/io/outputs.hpp"
#include "attnrec/io/run_dir.hpp"
#include "attnrec/util/device.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/hash.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

namespace fs = std::filesystem;

std::vector<std::string> model_roles(const Config& model) {
  std::vector<std::string> roles = {"history"};
  if (has_column(model.data, "item")) roles.push_back("item");
  if (model.model.embedding.user) roles.push_back("user");
  return roles;
}

std::vector<std::string> scoring_columns(const std::string& path, const Config& model,
                                         const DataConfig& read, bool need_label,
                                         bool label_optional) {
  std::ifstream in(path);
  if (!in) throw DataError(path + ": cannot open sample file");
  std::string first;
  std::getline(in, first);
  if (!first.empty() && first.back() == '\r') first.pop_back();
  const auto header = read.header == HeaderMode::no ? std::nullopt : header_roles(first);
  std::vector<std::string> needed = model_roles(model);
  if (need_label) needed.insert(needed.begin(), "label");
  const std::string how = fmt::format(
      "the model needs the roles {}. Name the file's columns in a header line (tab-separated "
      "role names such as label<TAB>user<TAB>item<TAB>history) or with --set "
      "'data.columns=[\"label\", ...]' (roles: {}; ignore skips a column)",
      join(needed, ", "), join(choice_names(column_roles()), ", "));
  std::vector<std::string> columns = read.columns;
  std::string source = "data.columns";
  if (header) {
    columns = *header;  // the file says what it holds, in its own order
    source = "its header";
  } else if (!first.empty()) {
    std::vector<std::string_view> fields;
    split(first, '\t', fields);
    if (label_optional && has_column(read, "label") && fields.size() + 1 == columns.size()) {
      columns.erase(std::find(columns.begin(), columns.end(), "label"));
    }
    if (fields.size() != columns.size()) {
      throw DataError(fmt::format(
          "{}:1: has {} tab-separated fields and no header, but data.columns names {} ([{}]); {}",
          path, fields.size(), columns.size(), join(columns, ", "), how));
    }
  }
  std::vector<std::string> missing;
  for (const auto& role : needed) {
    if (std::find(columns.begin(), columns.end(), role) == columns.end()) missing.push_back(role);
  }
  if (!missing.empty()) {
    throw DataError(fmt::format("{}: has no {} column (its columns, from {}: [{}]); {}", path,
                                join(missing, ", "), source, join(columns, ", "), how));
  }
  return columns;
}

std::string file_beside(const std::string& data, const std::string& name) {
  const auto p = fs::path(data).parent_path() / name;
  std::error_code ec;
  return fs::exists(p, ec) ? p.string() : std::string();
}

std::vector<double> popularity_counts(const SampleSet& train, std::int64_t item_vocab,
                                      bool every_position) {
  if (!train.has_items) {
    throw DataError(train.source + ": the popularity baseline needs an item column");
  }
  std::vector<double> counts(static_cast<std::size_t>(item_vocab), 0.0);
  for (std::int64_t i = 0; i < train.size(); ++i) {
    if (train.has_labels && train.labels[i] != 1) continue;
    counts[train.items[i]] += 1.0;
    if (!every_position) continue;
    for (auto h = train.history_offsets[i] + 1; h < train.history_offsets[i + 1]; ++h) {
      counts[train.history[h]] += 1.0;
    }
  }
  counts[Vocab::kPad] = counts[Vocab::kOov] = 0.0;  // unknown items are the least popular
  return counts;
}

nlohmann::json describe_protocol(const std::string& data, const std::string& protocol_path) {
  nlohmann::json p;
  p["data"] = data;
  p["data_sha256"] = sha256_file(data);
  p["auc"] = "global ROC AUC over all samples; tied scores count 1/2";
  p["gauc"] =
      "per-user AUC averaged with weights = the user's sample count, over users with both "
      "classes";
  p["ranking_ties"] = "pessimistic: rank = 1 + #candidates scoring >= the positive";
  if (protocol_path.empty()) {
    p["preprocess_protocol"] = nullptr;
    p["split"] = "unknown (no protocol.json beside the data; pass --protocol)";
    return p;
  }
  nlohmann::json pre;
  try {
    pre = nlohmann::json::parse(read_file(protocol_path));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(protocol_path + ": not a valid protocol.json: " + e.what());
  }
  p["preprocess_protocol"] = protocol_path;
  p["split"] = pre.value("/split/protocol"_json_pointer, std::string("unknown"));
  p["seed"] = pre.value("/options/seed"_json_pointer, nlohmann::json());
  p["negatives_per_positive"] = pre.value("/negatives/per_positive"_json_pointer, nlohmann::json());
  p["negative_sampling"] = pre.value("/negatives/sampling"_json_pointer, nlohmann::json());
  p["input_sha256"] = pre.value("/input/sha256"_json_pointer, nlohmann::json());
  return p;
}

bool compare_with_popularity(nlohmann::json& metrics) {
  const auto& b = metrics.at("baseline_popularity");
  const bool beats = metrics["auc"].is_number() && b["auc"].is_number() &&
                     metrics["auc"].get<double>() > b["auc"].get<double>();
  metrics["beats_popularity"] = beats;
  return beats;
}

namespace {

/// The stored config with scoring overrides: how to read and score, never the model.

/// A model and a file scored with it.
struct Scored {
  torch::Device device = torch::kCPU;
  LoadedModel loaded;
  Config config;  ///< how the file was read and scored
  SampleSet set;
  std::vector<std::string> columns;
  std::vector<double> probabilities;
  std::vector<double> baseline;  ///< popularity baseline's per-sample scores, when asked for
};

/// The checkpoint and its verified header, and the guard with everything the command reads.
struct Inputs {
  std::string checkpoint;
  CheckpointMeta meta;
  Config config;
  OutputGuard guard;
};

Inputs scoring_inputs(const ScoringRequest& r) {
  Inputs in;
  in.checkpoint = resolve_checkpoint_path(r.checkpoint);
  in.meta = read_checkpoint_meta(in.checkpoint);
  in.config = scoring_config(in.meta.config, r.overrides);
  const auto dir = fs::path(in.checkpoint).parent_path();
  in.guard.input(in.checkpoint, "--checkpoint")
      .input((dir / in.meta.items.file).lexically_normal().string(),
             "the checkpoint's item vocabulary")
      .input((dir / in.meta.users.file).lexically_normal().string(),
             "the checkpoint's user vocabulary")
      .input(r.data, "--data");
  return in;
}

Scored score_file(const Inputs& in, const ScoringRequest& r, bool label_optional) {
  Scored s;
  s.config = in.config;
  s.device = resolve_device(s.config.train.device);
  configure_threads(s.config.train.threads);
  s.loaded = load_model(in.checkpoint, s.device);
  spdlog::info("model {} (step {}), data {}", s.loaded.checkpoint_path,
               s.loaded.meta.train_state.global_step, r.data);
  s.set = read_for_scoring(r.data, s.loaded, s.config, !label_optional, label_optional, &s.columns);
  s.probabilities = score(s.loaded.model, s.set,
                          EvalOptions()
                              .with_batch_size(s.config.eval.batch_size)
                              .with_threshold(s.config.eval.threshold)
                              .with_device(s.device));
  return s;
}

EvalOptions eval_options(const Scored& s) {
  return EvalOptions().with_batch_size(s.config.eval.batch_size).with_device(s.device);
}

/// The files an evaluation reads besides the model and the data, resolved.
struct EvaluationFiles {
  std::string protocol, candidates, interactions, train;
};

EvaluationFiles evaluation_files(const EvaluationRequest& r, const Config& stored) {
  for (const auto k : r.ks) {
    if (k < 1) throw UsageError("--ks: every K must be >= 1, got " + std::to_string(k));
  }
  EvaluationFiles f;
  const auto& data = r.scoring.data;
  f.protocol = r.protocol.empty() ? file_beside(data, "protocol.json") : r.protocol;
  if (!r.protocol.empty() && !fs::exists(r.protocol)) {
    throw UsageError("--protocol: " + r.protocol + ": no such file");
  }
  if (r.sampled_ranking) {
    f.candidates = r.candidates.empty() ? file_beside(data, "test_candidates.tsv") : r.candidates;
    if (f.candidates.empty()) {
      throw UsageError(
          "--ranking sampled: no --candidates file given and no test_candidates.tsv beside " +
          data);
    }
  }
  if (r.full_ranking) {
    f.interactions =
        r.interactions.empty() ? file_beside(data, "interactions.tsv") : r.interactions;
  }
  if (r.popularity_baseline) {
    f.train = r.train.empty() ? stored.data.train : r.train;
    if (f.train.empty()) throw UsageError("--baseline popularity: no training file; pass --train");
  }
  return f;
}

/// The popularity baseline on the evaluated file: its metrics (ranking ones only: counts are not
/// probabilities) and the per-item counts for the ranking protocols.
std::vector<double> add_popularity_baseline(Scored& s, const std::string& train,
                                            nlohmann::json& metrics) {
  const SampleSet set = read_for_scoring(train, s.loaded, s.loaded.config, /*need_label=*/false,
                                         /*label_optional=*/true, nullptr);
  std::vector<double> counts =
      popularity_counts(set, s.loaded.items.size(), s.loaded.config.train.next_item);
  std::vector<double> scores(static_cast<std::size_t>(s.set.size()));
  for (std::int64_t i = 0; i < s.set.size(); ++i) scores[i] = counts[s.set.items[i]];
  auto base = compute_metrics(s.set, scores, s.config.eval.threshold);
  s.baseline = std::move(scores);
  for (const char* k : {"logloss", "accuracy", "precision", "recall", "f1", "threshold"}) {
    base.erase(k);
  }
  base["train"] = train;
  metrics["baseline_popularity"] = base;
  metrics["protocol"]["baseline"] = "popularity: positive training samples per item in " + train;
  return counts;
}

/// The ranking protocols asked for, for the model and (with counts) the baseline.
void add_ranking(const EvaluationRequest& r, const EvaluationFiles& files, Scored& s,
                 const std::vector<double>& popularity, nlohmann::json& metrics) {
  RankingOptions options;
  options.ks = r.ks;
  options.pairs_per_batch = r.ranking_batch;
  const auto run = [&](const RankingInput& input, const std::string& name) {
    auto model = model_scorer(s.loaded.model, s.device, r.ranking_batch);
    metrics["ranking"][name] = evaluate_ranking(*model, input, options);
    if (!popularity.empty()) {
      auto pop = popularity_scorer(popularity);
      metrics["baseline_popularity"]["ranking"][name] = evaluate_ranking(*pop, input, options);
    }
  };
  if (r.sampled_ranking) {
    const ReaderOptions reader = reader_options(s.config.data, at::get_num_threads());
    const auto input =
        read_candidates_file(files.candidates, reader, s.loaded.items, s.loaded.users);
    run(input, "sampled");
    metrics["protocol"]["sampled"] = {
        {"candidates_file", files.candidates},
        {"candidates_sha256", sha256_file(files.candidates)},
        {"negatives_per_row", input.negatives.empty() ? 0 : input.negatives[0].size()},
        {"ks", r.ks}};
  }
  if (r.full_ranking) {
    const auto input = full_ranking_input(s.set, r.scoring.data, s.loaded.items, s.loaded.users,
                                          files.interactions);
    run(input, "full");
    metrics["protocol"]["full"] = {
        {"candidate_set", "every vocabulary item the user has not interacted with"},
        {"exclusions_from", files.interactions.empty()
                                ? "histories and positives of the evaluated file"
                                : files.interactions},
        {"ks", r.ks}};
  }
}

std::string number_or_na(const nlohmann::json& m, const std::string& key) {
  return m.contains(key) && m[key].is_number() ? fmt::format("{:.4f}", m[key].get<double>())
                                               : std::string("n/a");
}

std::string format_ranking_table(
    const std::vector<std::pair<std::string, nlohmann::json>>& columns) {
  std::string out = fmt::format("{:<22}", "ranking");
  for (const auto& [name, _] : columns) out += fmt::format("{:>14}", name);
  out += "\n" + std::string(22 + 14 * columns.size(), '-') + "\n";
  // Rows in reading order: hr@K by increasing K, then ndcg@K, then the rest.
  std::vector<std::int64_t> ks;
  for (const auto& [key, value] : columns.front().second.items()) {
    if (key.rfind("hr@", 0) == 0) ks.push_back(std::stoll(key.substr(3)));
  }
  std::sort(ks.begin(), ks.end());
  std::vector<std::string> keys;
  for (const char* prefix : {"hr@", "ndcg@"}) {
    for (const auto k : ks) keys.push_back(prefix + std::to_string(k));
  }
  for (const char* key : {"mrr", "mean_rank", "mean_candidates_per_row"}) keys.emplace_back(key);
  for (const auto& key : keys) {
    out += fmt::format("{:<22}", key);
    for (const auto& [name, m] : columns) out += fmt::format("{:>14}", number_or_na(m, key));
    out += "\n";
  }
  return out;
}

}  // namespace

Config scoring_config(const Config& stored, const std::vector<std::string>& overrides) {
  Config config = stored;
  // Where the model was trained says nothing about where it is scored.
  config.train.device = "auto";
  config.train.threads = 0;
  apply_overrides(config, overrides);
  validate_config(config);
  std::vector<std::string> refused;
  for (const auto& f : config_fields()) {
    if (!f.training || field_value(f, config) == field_value(f, stored)) continue;
    const std::string section = f.name.substr(0, f.name.find('.'));
    if (!f.resumable && section != "data" && section != "eval") refused.push_back(f.pointer());
  }
  if (!refused.empty()) {
    throw ConfigError("--set: " + join(refused, ", ") +
                      ": describes the trained model, which comes from the checkpoint; when "
                      "scoring only data.*, eval.*, train.device and train.threads may be set");
  }
  return config;
}

SampleSet read_for_scoring(const std::string& path, const LoadedModel& loaded, const Config& config,
                           bool need_label, bool label_optional,
                           std::vector<std::string>* columns) {
  ReaderOptions options = reader_options(config.data, at::get_num_threads());
  options.columns = scoring_columns(path, loaded.config, config.data, need_label, label_optional);
  if (!need_label) options.require_both_classes = false;
  if (columns) *columns = options.columns;
  return read_sample_file(path, options, loaded.items, loaded.users);
}

nlohmann::json run_evaluation(const EvaluationRequest& r) {
  auto in = scoring_inputs(r.scoring);
  const EvaluationFiles files = evaluation_files(r, in.meta.config);
  // Every output is checked against every input before anything is read or written.
  in.guard.input(files.candidates, "--candidates")
      .input(files.interactions, "--interactions")
      .input(files.protocol, "--protocol")
      .input(r.oracle, "--oracle")
      .input(files.train, "--train")
      .output(r.output, "--output")
      .output(r.predictions, "--predictions");
  auto s = score_file(in, r.scoring, /*label_optional=*/false);
  nlohmann::json metrics = compute_metrics(s.set, s.probabilities, s.config.eval.threshold);
  metrics["checkpoint"] = s.loaded.checkpoint_path;
  metrics["data"] = r.scoring.data;
  if (!r.oracle.empty()) {
    const auto m =
        attention_mass(s.loaded.model, s.set, read_planted_positions(r.oracle), eval_options(s));
    metrics["attention_planted_mass"] = m.planted_mass;
    metrics["attention_uniform_share"] = m.uniform_share;
    metrics["attention_mass_ratio"] = m.ratio;
    metrics["attention_samples"] = m.samples;
  }
  metrics["protocol"] = describe_protocol(r.scoring.data, files.protocol);
  std::vector<double> popularity;
  if (r.popularity_baseline) popularity = add_popularity_baseline(s, files.train, metrics);
  add_ranking(r, files, s, popularity, metrics);
  if (r.popularity_baseline && !compare_with_popularity(metrics)) {
    spdlog::warn("the model does not beat the item-popularity baseline on AUC ({} vs {})",
                 number_or_na(metrics, "auc"), number_or_na(metrics["baseline_popularity"], "auc"));
  }
  if (r.inspect) {
    r.inspect(
        {s.loaded.model, s.set, s.loaded.items, s.probabilities, s.baseline, eval_options(s)});
  }
  if (!r.output.empty()) write_file_atomic(r.output, metrics.dump(2) + "\n");
  if (!r.predictions.empty()) {
    write_predictions(r.predictions, s.set, s.columns, s.probabilities, true);
  }
  return metrics;
}

std::string format_evaluation(const nlohmann::json& metrics) {
  std::string out = format_metrics_table(metrics);
  std::vector<std::pair<std::string, nlohmann::json>> ranking;
  const bool baseline = metrics.contains("baseline_popularity");
  for (const std::string name : {"sampled", "full"}) {
    if (metrics.contains("ranking") && metrics["ranking"].contains(name)) {
      ranking.emplace_back(name, metrics["ranking"][name]);
      if (baseline && metrics["baseline_popularity"].contains("ranking")) {
        ranking.emplace_back(name + "/pop", metrics["baseline_popularity"]["ranking"][name]);
      }
    }
  }
  if (baseline) {
    const auto& b = metrics["baseline_popularity"];
    out += fmt::format("{:<22}{:>12}{:>12}\n", "vs popularity", "model", "popularity");
    for (const char* k : {"auc", "gauc"}) {
      out += fmt::format("{:<22}{:>12}{:>12}\n", k, number_or_na(metrics, k), number_or_na(b, k));
    }
  }
  if (!ranking.empty()) out += format_ranking_table(ranking);
  const auto& p = metrics["protocol"];
  out += fmt::format("protocol: split {}, seed {}, data sha256 {}\n",
                     p["split"].is_string() ? p["split"].get<std::string>() : p["split"].dump(),
                     p.value("seed", nlohmann::json()).dump(),
                     p["data_sha256"].get<std::string>().substr(0, 16));
  return out;
}

std::int64_t run_prediction(const ScoringRequest& r, const std::string& output) {
  auto in = scoring_inputs(r);
  in.guard.output(output, "--output");
  auto s = score_file(in, r, /*label_optional=*/true);
  write_predictions(output, s.set, s.columns, s.probabilities, false);
  return s.set.size();
}

}  // namespace attnrec
