// `attnrec explain`: flags to an ExplainRequest.

#include <fmt/format.h>
#include <memory>

#include "attnrec/dist/world.hpp"
#include "attnrec/io/outputs.hpp"
#include "attnrec/tools/explain.hpp"
#include "attnrec/util/files.hpp"
#include "commands.hpp"

namespace attnrec::cli {

void add_explain_command(CLI::App& app, Commands& commands) {
  struct Args {
    ExplainRequest request;
    std::string output;
    bool summary = false;
  };
  auto args = std::make_shared<Args>();
  auto& r = args->request;
  auto* cmd =
      app.add_subcommand("explain",
                         "Which history items drove each prediction: attention weights beside "
                         "leave-one-out and attention-only logit changes, with controls");
  cmd->add_option("--checkpoint", r.scoring.checkpoint,
                  "Checkpoint file, or a run directory (its best model)")
      ->required();
  cmd->add_option("--data", r.scoring.data, "Sample file (a label column is optional)")->required();
  cmd->add_option("--lines", r.lines, "1-based line numbers of the file to explain: 3,7,10-20");
  cmd->add_option("--limit", r.limit,
                  "Without --lines: explain the first N samples (0: all; default 10, with "
                  "--summary all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-k", r.top_k, "Positions listed per sample, by attention weight")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--oracle", r.oracle,
                  "The generator's oracle.json for this test file: the summary's planted-position "
                  "hit rate");
  cmd->add_option("--seed", r.seed, "Seed of the random control")->capture_default_str();
  cmd->add_option("--output,-o", args->output, "Write the JSON here ('-': stdout)");
  cmd->add_flag("--summary", args->summary,
                "Summarise over the samples (every sample unless --limit or --lines) instead of "
                "listing each");
  cmd->add_option("--set", r.scoring.overrides,
                  "Scoring override KEY=VALUE (train.device, train.threads, eval.batch_size, "
                  "data.*)");
  commands.push_back({cmd, [args, cmd]() {
                        require_single_process(discover_world(), "attnrec explain");
                        auto& r = args->request;
                        OutputGuard guard;
                        guard.input(r.scoring.data, "--data").output(args->output, "--output");
                        if (args->summary) {
                          r.examples = false;
                          if (cmd->count("--limit") == 0) r.limit = 0;
                        }
                        const auto result = run_explain(r);
                        if (args->output == "-") {
                          fmt::print("{}\n", result.dump(2));
                          return 0;
                        }
                        if (!args->output.empty()) {
                          write_file_atomic(args->output, result.dump(2) + "\n");
                        }
                        fmt::print("{}", format_explanations(result, r.top_k));
                        return 0;
                      }});
}

}  // namespace attnrec::cli
