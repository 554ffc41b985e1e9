// `attnrec train`: train a model described by a config into a run directory.

#include <filesystem>
#include <fmt/format.h>
#include <memory>
#include <spdlog/spdlog.h>

#include "attnrec/config/fields.hpp"
#include "attnrec/eval/evaluator.hpp"
#include "attnrec/train/run.hpp"
#include "commands.hpp"

namespace attnrec::cli {

void add_train_command(CLI::App& app, Commands& commands) {
  struct Args {
    ConfigArgs config;
    std::string run_dir;
    bool overwrite = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("train", "Train a model; writes a run directory");
  add_config_options(cmd, args->config, false);
  cmd->add_option("--run-dir", args->run_dir,
                  "Run directory (default: runs/<config file name without .json>)");
  cmd->add_flag("--overwrite", args->overwrite, "Replace an existing run in the run directory");
  commands.push_back({cmd, [args]() {
    // Everything about the config is checked before any data is read.
    const Config config = load_config(args->config.path, args->config.overrides);
    TrainRunOptions options;
    options.overwrite = args->overwrite;
    options.run_dir = !args->run_dir.empty()
                          ? args->run_dir
                          : "runs/" + (args->config.path.empty()
                                           ? std::string("run")
                                           : std::filesystem::path(args->config.path).stem().string());
    const auto summary = run_training(config, options);
    fmt::print("\nrun directory: {}\n", options.run_dir);
    if (summary.contains("test")) {
      fmt::print("test metrics (best checkpoint {}):\n{}", summary["best_checkpoint"].get<std::string>(),
                 format_metrics_table(summary["test"]));
    }
    return 0;
  }});
}

}  // namespace attnrec::cli
