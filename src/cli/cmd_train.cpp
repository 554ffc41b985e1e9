// `attnrec train`: train a model described by a config into a run directory.

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <filesystem>
#include <memory>

#include "attnrec/config/fields.hpp"
#include "attnrec/dist/data_parallel.hpp"
#include "attnrec/dist/world.hpp"
#include "attnrec/eval/evaluator.hpp"
#include "attnrec/train/run.hpp"
#include "attnrec/util/device.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/logging.hpp"
#include "commands.hpp"

namespace attnrec::cli {

namespace {
void print_summary(const nlohmann::json& summary) {
  if (!summary.contains("run_dir")) return;  // a rank other than 0: rank 0 reports
  fmt::print("\nrun directory: {}\n", summary["run_dir"].get<std::string>());
  if (summary.contains("test")) {
    fmt::print("test metrics (best checkpoint {}):\n{}",
               summary["best_checkpoint"].get<std::string>(),
               format_metrics_table(summary["test"]));
  }
}
/// Several processes (torchrun, srun, mpirun): each logs with its rank, connects to the others
/// once the config is known, and takes its share of the host's cores.
void set_up_processes(const World& world, TrainRunOptions& options) {
  if (!world.distributed()) return;
  set_log_rank(world.rank, world.world_size);
  options.connect = [world](const Config& config, const torch::Device& device) {
    return connect_data_parallel(world, config.train.distributed, device);
  };
  options.cuda_index = world.local_rank;
  options.default_threads = std::max(1, physical_cores() / world.local_world_size);
}

}  // namespace

void add_train_command(CLI::App& app, Commands& commands) {
  struct Args {
    ConfigArgs config;
    std::string run_dir;
    bool overwrite = false;
    std::string resume;
    std::int64_t stop_after_steps = 0;
    bool allow_world_size_change = false;
    bool auto_resume = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("train", "Train a model; writes a run directory");
  add_config_options(cmd, args->config, false);
  cmd->add_option("--run-dir", args->run_dir,
                  "Run directory (default: runs/<config file name without .json>)");
  cmd->add_flag("--overwrite", args->overwrite, "Replace an existing run in the run directory");
  cmd->add_option("--resume", args->resume,
                  "Continue a run: a run directory (its latest checkpoint) or a checkpoint file; "
                  "the config comes from the checkpoint, --set may change e.g. train.epochs");
  cmd->add_option("--stop-after-steps", args->stop_after_steps,
                  "Stop with a checkpoint after this global step (resume later with --resume)");
  cmd->add_flag("--allow-world-size-change", args->allow_world_size_change,
                "With --resume: continue a checkpoint written by a different number of processes "
                "(no longer bit-identical to an uninterrupted run)");
  cmd->add_flag("--auto-resume", args->auto_resume,
                "Continue the run in --run-dir from its latest checkpoint when it holds one of "
                "this config, else start it (for torchrun --max_restarts, Slurm --requeue: the "
                "same command line after a restart)");
  commands.push_back(
      {cmd, [args]() {
         TrainRunOptions options;
         options.stop_after_steps = args->stop_after_steps;
         options.allow_world_size_change = args->allow_world_size_change;
         set_up_processes(discover_world(), options);
         if (!args->resume.empty()) {
           if (!args->config.path.empty() || !args->run_dir.empty() || args->overwrite) {
             throw UsageError(
                 "--resume takes the config and run directory from the checkpoint; "
                 "drop --config, --run-dir and --overwrite (use --set for allowed "
                 "changes such as train.epochs)");
           }
           const auto summary = resume_training(args->resume, args->config.overrides, options);
           print_summary(summary);
           return 0;
         }
         // Everything about the config is checked before any data is read.
         const Config config = load_config(args->config.path, args->config.overrides);
         options.overwrite = args->overwrite;
         options.config_file = args->config.path;
         options.run_dir =
             !args->run_dir.empty()
                 ? args->run_dir
                 : "runs/" + (args->config.path.empty()
                                  ? std::string("run")
                                  : std::filesystem::path(args->config.path).stem().string());
         if (args->auto_resume && !args->overwrite) {
           if (const auto target = auto_resume_target(config, options.run_dir)) {
             spdlog::info("--auto-resume: {} holds this run; continuing from {}", options.run_dir,
                          target->checkpoint);
             print_summary(resume_training(options.run_dir, target->overrides, options));
             return 0;
           }
           // A run stopped before its first checkpoint starts again.
           options.overwrite = true;
         }
         print_summary(run_training(config, options));
         return 0;
       }});
}

}  // namespace attnrec::cli
