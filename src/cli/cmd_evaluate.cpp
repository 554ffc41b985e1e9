// `attnrec evaluate` and `attnrec predict`: score a file with a trained model.

#include <fmt/format.h>
#include <memory>
#include <spdlog/spdlog.h>

#include "attnrec/eval/attention_analysis.hpp"
#include "attnrec/eval/evaluator.hpp"
#include "attnrec/train/checkpoint.hpp"
#include "attnrec/train/run.hpp"
#include "attnrec/util/device.hpp"
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

Scored score_file(const ScoreArgs& a, bool label_optional) {
  Scored s;
  s.device = resolve_device(a.device);
  const torch::Device& device = s.device;
  configure_threads(a.threads);
  s.loaded = load_model(a.checkpoint, device);
  Config& config = s.loaded.config;
  if (!a.on_bad_line.empty()) config.data.on_bad_line = a.on_bad_line;
  if (a.batch_size > 0) config.eval.batch_size = a.batch_size;
  spdlog::info("model {} (step {}), data {}", s.loaded.checkpoint_path,
               s.loaded.meta["train_state"]["global_step"].get<std::int64_t>(), a.data);
  s.set = read_for_model(a.data, config, s.loaded.items, s.loaded.users, label_optional,
                         &s.columns);
  s.probabilities = score(s.loaded.model, s.set, EvalOptions()
                                                     .with_batch_size(config.eval.batch_size)
                                                     .with_threshold(config.eval.threshold)
                                                     .with_device(device));
  return s;
}

}  // namespace

void add_evaluate_command(CLI::App& app, Commands& commands) {
  struct Args {
    ScoreArgs score;
    std::string output;
    std::string predictions;
    std::string oracle;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("evaluate", "Compute metrics of a trained model on a file");
  cmd->add_option("--oracle", args->oracle,
                  "oracle.json of `attnrec generate` for this test file: also report the "
                  "attention mass on the planted history positions");
  add_score_options(cmd, args->score);
  cmd->add_option("--output", args->output, "Write the metrics as JSON to this file");
  cmd->add_option("--predictions", args->predictions, "Also write per-sample scores (TSV)");
  commands.push_back({cmd, [args]() {
    auto s = score_file(args->score, /*label_optional=*/false);
    nlohmann::json metrics =
        compute_metrics(s.set, s.probabilities, s.loaded.config.eval.threshold);
    metrics["checkpoint"] = s.loaded.checkpoint_path;
    metrics["data"] = args->score.data;
    if (!args->oracle.empty()) {
      const auto m = attention_mass(s.loaded.model, s.set, read_planted_positions(args->oracle),
                                    EvalOptions()
                                        .with_batch_size(s.loaded.config.eval.batch_size)
                                        .with_device(s.device));
      metrics["attention_planted_mass"] = m.planted_mass;
      metrics["attention_uniform_share"] = m.uniform_share;
      metrics["attention_mass_ratio"] = m.ratio;
      metrics["attention_samples"] = m.samples;
    }
    fmt::print("{}", format_metrics_table(metrics));
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
    auto s = score_file(args->score, /*label_optional=*/true);
    write_predictions(args->output, s.set, s.columns, s.probabilities, false);
    spdlog::info("wrote {} predictions to {}", s.set.size(), args->output);
    return 0;
  }});
}

}  // namespace attnrec::cli
