// `attnrec evaluate` and `attnrec predict`: flags -> an EvaluationRequest / ScoringRequest; the
// use cases live in eval/evaluation.hpp.

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <memory>

#include "attnrec/dist/world.hpp"
#include "attnrec/eval/evaluation.hpp"
#include "commands.hpp"

namespace attnrec::cli {

namespace {

void add_scoring_options(CLI::App* cmd, ScoringRequest& r) {
  cmd->add_option("--checkpoint", r.checkpoint,
                  "Checkpoint file, or a run directory (its best model)")
      ->required();
  cmd->add_option("--data", r.data,
                  "Sample file to score: its header names its columns (any order, extra columns "
                  "allowed); without one, the run's data.columns apply")
      ->required();
  cmd->add_option("--set", r.overrides,
                  "KEY=VALUE: how to read and score (data.*, eval.*, train.device, "
                  "train.threads), e.g. --set train.device=cuda --set eval.batch_size=4096 "
                  "--set 'data.columns=[\"label\",\"item\",\"history\"]'; repeatable");
}

}  // namespace

void add_evaluate_command(CLI::App& app, Commands& commands) {
  auto r = std::make_shared<EvaluationRequest>();
  auto ranking = std::make_shared<std::vector<std::string>>();
  auto baseline = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("evaluate", "Compute metrics of a trained model on a file");
  add_scoring_options(cmd, r->scoring);
  cmd->add_option("--oracle", r->oracle,
                  "oracle.json of `attnrec generate` for this test file: also report the "
                  "attention mass on the planted history positions");
  cmd->add_option("--output", r->output, "Write the metrics as JSON to this file (- for stdout)");
  cmd->add_option("--predictions", r->predictions, "Also write per-sample scores (TSV)");
  cmd->add_option("--ranking", *ranking,
                  "Ranking protocols to run: sampled (frozen candidates file) and/or full (every "
                  "item the user has not interacted with)")
      ->delimiter(',')
      ->check(CLI::IsMember({"sampled", "full"}));
  cmd->add_option("--candidates", r->candidates,
                  "sampled: candidates file (default: test_candidates.tsv beside --data)");
  cmd->add_option("--interactions", r->interactions,
                  "full: interaction log whose items are excluded per user (default: "
                  "interactions.tsv beside --data, else the histories of --data)");
  cmd->add_option("--ks", r->ks, "Cut-offs K of HR@K and NDCG@K")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--ranking-batch", r->ranking_batch,
                  "(row, candidate) pairs per model call in ranking")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 24));
  cmd->add_option("--baseline", *baseline,
                  "Also score with a baseline and report it side by side: popularity (positive "
                  "training samples per item)")
      ->check(CLI::IsMember({"popularity"}));
  cmd->add_option("--train", r->train,
                  "Training file of the popularity baseline (default: the run's data.train)");
  cmd->add_option("--protocol", r->protocol,
                  "protocol.json of the data (default: the one beside --data)");
  commands.push_back({cmd, [r, ranking, baseline]() {
                        require_single_process(discover_world(), "attnrec evaluate");
                        r->sampled_ranking =
                            std::count(ranking->begin(), ranking->end(), "sampled") > 0;
                        r->full_ranking = std::count(ranking->begin(), ranking->end(), "full") > 0;
                        r->popularity_baseline = *baseline == "popularity";
                        const auto metrics = run_evaluation(*r);
                        if (r->output != "-") fmt::print("{}", format_evaluation(metrics));
                        return 0;
                      }});
}

void add_predict_command(CLI::App& app, Commands& commands) {
  auto r = std::make_shared<ScoringRequest>();
  auto output = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("predict", "Write click probabilities for every line of a file");
  add_scoring_options(cmd, *r);
  cmd->add_option("--output", *output, "Output TSV: line, user, item, score (- for stdout)")
      ->required();
  commands.push_back({cmd, [r, output]() {
                        require_single_process(discover_world(), "attnrec predict");
                        const auto n = run_prediction(*r, *output);
                        spdlog::info("wrote {} predictions to {}", n, *output);
                        return 0;
                      }});
}

}  // namespace attnrec::cli
