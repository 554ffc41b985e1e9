// `attnrec evaluate` and `attnrec predict`: score a file with a trained model.

#include <fmt/format.h>

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <filesystem>
#include <memory>

#include "attnrec/eval/attention_analysis.hpp"
#include "attnrec/eval/evaluator.hpp"
#include "attnrec/eval/ranking_eval.hpp"
#include "attnrec/io/checkpoint.hpp"
#include "attnrec/io/outputs.hpp"
#include "attnrec/io/run_dir.hpp"
#include "attnrec/train/run.hpp"
#include "attnrec/util/device.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/hash.hpp"
#include "attnrec/util/strings.hpp"
#include "commands.hpp"

namespace attnrec::cli {

namespace {

/// Options shared by evaluate and predict.
struct ScoreArgs {
  std::string checkpoint;
  std::string data;
  std::string device = "auto";
  std::int64_t batch_size = 0;
  std::int64_t threads = 0;
  std::string on_bad_line;
};

void add_score_options(CLI::App* cmd, ScoreArgs& a) {
  cmd->add_option("--checkpoint", a.checkpoint,
                  "Checkpoint file, or a run directory (its best model)")
      ->required();
  cmd->add_option("--data", a.data, "Sample file to score (same layout as training data)")
      ->required();
  cmd->add_option("--device", a.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--batch-size", a.batch_size, "Samples per batch (default: eval.batch_size)");
  cmd->add_option("--threads", a.threads, "CPU threads (default: physical cores)");
  cmd->add_option("--on-bad-line", a.on_bad_line, "error or skip (default: the run's setting)")
      ->check(CLI::IsMember({"error", "skip"}));
}

struct Scored {
  torch::Device device = torch::kCPU;
  LoadedModel loaded;
  SampleSet set;
  std::vector<std::string> columns;
  std::vector<double> probabilities;
};

/// The checkpoint a scoring command reads, resolved and with its header verified, and the
/// guard that checks the command's outputs against everything it reads.
struct ScoreInputs {
  std::string checkpoint;
  CheckpointMeta meta;
  OutputGuard guard;
};

ScoreInputs score_inputs(const ScoreArgs& a) {
  ScoreInputs in;
  in.checkpoint = resolve_checkpoint_path(a.checkpoint);
  in.meta = read_checkpoint_meta(in.checkpoint);
  const auto dir = std::filesystem::path(in.checkpoint).parent_path();
  in.guard.input(in.checkpoint, "--checkpoint")
      .input((dir / in.meta.items.file).lexically_normal().string(),
             "the checkpoint's item vocabulary")
      .input((dir / in.meta.users.file).lexically_normal().string(),
             "the checkpoint's user vocabulary")
      .input(a.data, "--data");
  return in;
}

Scored score_file(const ScoreArgs& a, bool label_optional) {
  Scored s;
  s.device = resolve_device(a.device, "--device");
  const torch::Device& device = s.device;
  configure_threads(a.threads, "--threads");
  if (a.batch_size < 0) {
    throw UsageError("--batch-size: expected a positive number, got " +
                     std::to_string(a.batch_size));
  }
  s.loaded = load_model(a.checkpoint, device);
  Config& config = s.loaded.config;
  if (!a.on_bad_line.empty()) config.data.on_bad_line = a.on_bad_line;
  if (a.batch_size > 0) config.eval.batch_size = a.batch_size;
  spdlog::info("model {} (step {}), data {}", s.loaded.checkpoint_path,
               s.loaded.meta.train_state.global_step, a.data);
  s.set =
      read_for_model(a.data, config, s.loaded.items, s.loaded.users, label_optional, &s.columns);
  s.probabilities = score(s.loaded.model, s.set,
                          EvalOptions()
                              .with_batch_size(config.eval.batch_size)
                              .with_threshold(config.eval.threshold)
                              .with_device(device));
  return s;
}

/// A file beside `data` (same directory) when it exists, else "".
std::string beside(const std::string& data, const char* name) {
  const auto p = std::filesystem::path(data).parent_path() / name;
  return std::filesystem::exists(p) ? p.string() : std::string();
}

/// Positive training samples per item id: the popularity baseline's scores.
std::vector<double> popularity_counts(const std::string& train, const Scored& s) {
  const SampleSet set = read_for_model(train, s.loaded.config, s.loaded.items, s.loaded.users,
                                       /*label_optional=*/false);
  if (!set.has_items) throw DataError(train + ": the popularity baseline needs an item column");
  std::vector<double> counts(static_cast<std::size_t>(s.loaded.items.size()), 0.0);
  for (std::int64_t i = 0; i < set.size(); ++i) {
    if (!set.has_labels || set.labels[i] == 1) counts[set.items[i]] += 1.0;
  }
  counts[Vocab::kPad] = counts[Vocab::kOov] = 0.0;  // unknown items are the least popular
  return counts;
}

/// The "protocol" object: what the numbers in a metrics JSON mean.
nlohmann::json describe_protocol(const std::string& data, const std::string& protocol_path) {
  nlohmann::json p;
  p["data"] = data;
  p["data_sha256"] = sha256_file(data);
  p["auc"] = "global ROC AUC over all samples; tied scores count 1/2";
  p["gauc"] =
      "per-user AUC averaged with weights = the user's sample count, over users with "
      "both classes";
  p["ranking_ties"] = "pessimistic: rank = 1 + #candidates scoring >= the positive";
  if (!protocol_path.empty()) {
    nlohmann::json pre;
    try {
      pre = nlohmann::json::parse(read_file(protocol_path));
    } catch (const nlohmann::json::exception& e) {
      throw DataError(protocol_path + ": not a valid protocol.json: " + e.what());
    }
    p["preprocess_protocol"] = protocol_path;
    p["split"] = pre.value("/split/protocol"_json_pointer, std::string("unknown"));
    p["seed"] = pre.value("/options/seed"_json_pointer, nlohmann::json());
    p["negatives_per_positive"] =
        pre.value("/negatives/per_positive"_json_pointer, nlohmann::json());
    p["negative_sampling"] = pre.value("/negatives/sampling"_json_pointer, nlohmann::json());
    p["input_sha256"] = pre.value("/input/sha256"_json_pointer, nlohmann::json());
  } else {
    p["preprocess_protocol"] = nullptr;
    p["split"] = "unknown (no protocol.json beside the data; pass --protocol)";
  }
  return p;
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
    for (const auto& [name, m] : columns) {
      out += m.contains(key) && m[key].is_number() ? fmt::format("{:>14.4f}", m[key].get<double>())
                                                   : fmt::format("{:>14}", "n/a");
    }
    out += "\n";
  }
  return out;
}

}  // namespace

void add_evaluate_command(CLI::App& app, Commands& commands) {
  struct Args {
    ScoreArgs score;
    std::string output;
    std::string predictions;
    std::string oracle;
    std::vector<std::string> ranking;
    std::string candidates;
    std::string interactions;
    std::vector<std::int64_t> ks = {1, 5, 10, 20};
    std::int64_t ranking_batch = 2048;
    std::string baseline;
    std::string train;
    std::string protocol;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("evaluate", "Compute metrics of a trained model on a file");
  cmd->add_option("--oracle", args->oracle,
                  "oracle.json of `attnrec generate` for this test file: also report the "
                  "attention mass on the planted history positions");
  add_score_options(cmd, args->score);
  cmd->add_option("--output", args->output, "Write the metrics as JSON to this file");
  cmd->add_option("--predictions", args->predictions, "Also write per-sample scores (TSV)");
  cmd->add_option("--ranking", args->ranking,
                  "Ranking protocols to run: sampled (frozen candidates file) and/or full (every "
                  "item the user has not interacted with)")
      ->delimiter(',')
      ->check(CLI::IsMember({"sampled", "full"}));
  cmd->add_option("--candidates", args->candidates,
                  "sampled: candidates file (default: test_candidates.tsv beside --data)");
  cmd->add_option("--interactions", args->interactions,
                  "full: interaction log whose items are excluded per user (default: "
                  "interactions.tsv beside --data, else the histories of --data)");
  cmd->add_option("--ks", args->ks, "Cut-offs K of HR@K and NDCG@K")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--ranking-batch", args->ranking_batch,
                  "(row, candidate) pairs per model call in ranking")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 24));
  cmd->add_option("--baseline", args->baseline,
                  "Also score with a baseline and report it side by side: popularity (positive "
                  "training samples per item)")
      ->check(CLI::IsMember({"popularity"}));
  cmd->add_option("--train", args->train,
                  "Training file of the popularity baseline (default: the run's data.train)");
  cmd->add_option("--protocol", args->protocol,
                  "protocol.json of the data (default: the one beside --data)");
  commands.push_back(
      {cmd, [args]() {
         for (const auto k : args->ks) {
           if (k < 1) throw UsageError("--ks: every K must be >= 1, got " + std::to_string(k));
         }
         std::string protocol_path =
             args->protocol.empty() ? beside(args->score.data, "protocol.json") : args->protocol;
         if (!args->protocol.empty() && !std::filesystem::exists(protocol_path)) {
           throw UsageError("--protocol: " + protocol_path + ": no such file");
         }
         std::string candidates = args->candidates;
         const bool sampled = std::count(args->ranking.begin(), args->ranking.end(), "sampled") > 0;
         const bool full = std::count(args->ranking.begin(), args->ranking.end(), "full") > 0;
         if (sampled && candidates.empty()) {
           candidates = beside(args->score.data, "test_candidates.tsv");
           if (candidates.empty()) {
             throw UsageError(
                 "--ranking sampled: no --candidates file given and no "
                 "test_candidates.tsv beside " +
                 args->score.data);
           }
         }
         const std::string log_file = !full ? std::string()
                                      : args->interactions.empty()
                                          ? beside(args->score.data, "interactions.tsv")
                                          : args->interactions;
         // Every output is checked against every input before anything is read or written.
         auto inputs = score_inputs(args->score);
         inputs.guard.input(candidates, "--candidates")
             .input(log_file, "--interactions")
             .input(protocol_path, "--protocol")
             .input(args->oracle, "--oracle")
             .input(args->baseline.empty() ? std::string()
                    : args->train.empty()  ? inputs.meta.config.data.train
                                           : args->train,
                    "--train")
             .output(args->output, "--output")
             .output(args->predictions, "--predictions");
         auto s = score_file(args->score, /*label_optional=*/false);
         nlohmann::json metrics =
             compute_metrics(s.set, s.probabilities, s.loaded.config.eval.threshold);
         metrics["checkpoint"] = s.loaded.checkpoint_path;
         metrics["data"] = args->score.data;
         if (!args->oracle.empty()) {
           const auto m =
               attention_mass(s.loaded.model, s.set, read_planted_positions(args->oracle),
                              EvalOptions()
                                  .with_batch_size(s.loaded.config.eval.batch_size)
                                  .with_device(s.device));
           metrics["attention_planted_mass"] = m.planted_mass;
           metrics["attention_uniform_share"] = m.uniform_share;
           metrics["attention_mass_ratio"] = m.ratio;
           metrics["attention_samples"] = m.samples;
         }
         metrics["protocol"] = describe_protocol(args->score.data, protocol_path);
         std::vector<double> popularity;
         if (args->baseline == "popularity") {
           const std::string train = args->train.empty() ? s.loaded.config.data.train : args->train;
           if (train.empty())
             throw UsageError("--baseline popularity: no training file; pass --train");
           popularity = popularity_counts(train, s);
           std::vector<double> scores(static_cast<std::size_t>(s.set.size()));
           for (std::int64_t i = 0; i < s.set.size(); ++i) scores[i] = popularity[s.set.items[i]];
           auto base = compute_metrics(s.set, scores, s.loaded.config.eval.threshold);
           // Counts are not probabilities: only the ranking metrics mean something.
           for (const char* k : {"logloss", "accuracy", "precision", "recall", "f1", "threshold"}) {
             base.erase(k);
           }
           base["train"] = train;
           metrics["baseline_popularity"] = base;
           metrics["protocol"]["baseline"] =
               "popularity: positive training samples per item in " + train;
         }
         const ReaderOptions reader = reader_options(s.loaded.config.data, at::get_num_threads());
         RankingOptions ranking_options;
         ranking_options.ks = args->ks;
         ranking_options.pairs_per_batch = args->ranking_batch;
         std::vector<std::pair<std::string, nlohmann::json>> ranking_columns;
         auto run_ranking = [&](const RankingInput& input, const std::string& name) {
           auto model = model_scorer(s.loaded.model, s.device, args->ranking_batch);
           metrics["ranking"][name] = evaluate_ranking(*model, input, ranking_options);
           ranking_columns.emplace_back(name, metrics["ranking"][name]);
           if (!popularity.empty()) {
             auto pop = popularity_scorer(popularity);
             metrics["baseline_popularity"]["ranking"][name] =
                 evaluate_ranking(*pop, input, ranking_options);
             ranking_columns.emplace_back(name + "/pop",
                                          metrics["baseline_popularity"]["ranking"][name]);
           }
         };
         if (sampled) {
           const auto input =
               read_candidates_file(candidates, reader, s.loaded.items, s.loaded.users);
           run_ranking(input, "sampled");
           metrics["protocol"]["sampled"] = {
               {"candidates_file", candidates},
               {"candidates_sha256", sha256_file(candidates)},
               {"negatives_per_row", input.negatives.empty() ? 0 : input.negatives[0].size()},
               {"ks", args->ks}};
         }
         if (full) {
           const std::string& log = log_file;
           const auto input =
               full_ranking_input(s.set, args->score.data, s.loaded.items, s.loaded.users, log);
           run_ranking(input, "full");
           metrics["protocol"]["full"] = {
               {"candidate_set", "every vocabulary item the user has not interacted with"},
               {"exclusions_from",
                log.empty() ? "histories and positives of the evaluated file" : log},
               {"ks", args->ks}};
         }
         fmt::print("{}", format_metrics_table(metrics));
         if (metrics.contains("baseline_popularity")) {
           const auto& b = metrics["baseline_popularity"];
           const auto value = [](const nlohmann::json& m, const char* k) {
             return m.contains(k) && m[k].is_number() ? fmt::format("{:.4f}", m[k].get<double>())
                                                      : std::string("n/a");
           };
           fmt::print("{:<22}{:>12}{:>12}\n", "vs popularity", "model", "popularity");
           for (const char* k : {"auc", "gauc"}) {
             fmt::print("{:<22}{:>12}{:>12}\n", k, value(metrics, k), value(b, k));
           }
           const bool beats = metrics["auc"].is_number() && b["auc"].is_number() &&
                              metrics["auc"].get<double>() > b["auc"].get<double>();
           metrics["beats_popularity"] = beats;
           if (!beats) {
             spdlog::warn("the model does not beat the item-popularity baseline on AUC ({} vs {})",
                          value(metrics, "auc"), value(b, "auc"));
           }
         }
         if (!ranking_columns.empty()) fmt::print("{}", format_ranking_table(ranking_columns));
         const auto& p = metrics["protocol"];
         fmt::print("protocol: split {}, seed {}, data sha256 {}\n",
                    p["split"].is_string() ? p["split"].get<std::string>() : p["split"].dump(),
                    p.value("seed", nlohmann::json()).dump(),
                    p["data_sha256"].get<std::string>().substr(0, 16));
         if (!args->output.empty()) write_file_atomic(args->output, metrics.dump(2) + "\n");
         if (!args->predictions.empty()) {
           write_predictions(args->predictions, s.set, s.columns, s.probabilities, true);
         }
         return 0;
       }});
}

void add_predict_command(CLI::App& app, Commands& commands) {
  struct Args {
    ScoreArgs score;
    std::string output;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("predict", "Write click probabilities for every line of a file");
  add_score_options(cmd, args->score);
  cmd->add_option("--output", args->output, "Output TSV: line, user, item, score")->required();
  commands.push_back({cmd, [args]() {
                        score_inputs(args->score).guard.output(args->output, "--output");
                        auto s = score_file(args->score, /*label_optional=*/true);
                        write_predictions(args->output, s.set, s.columns, s.probabilities, false);
                        spdlog::info("wrote {} predictions to {}", s.set.size(), args->output);
                        return 0;
                      }});
}

}  // namespace attnrec::cli
