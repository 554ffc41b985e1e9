#pragma once
// Subcommand registration. Each cmd_*.cpp adds one subcommand and the function that runs it;
// main() parses, then runs the one that was chosen.

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace attnrec::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};
using Commands = std::vector<Command>;

/// `--config FILE` and repeatable `--set KEY=VALUE`, shared by every command that takes a config.
struct ConfigArgs {
  std::string path;
  std::vector<std::string> overrides;
};
void add_config_options(CLI::App* app, ConfigArgs& args, bool config_required);

void add_config_command(CLI::App& app, Commands& commands);
void add_generate_command(CLI::App& app, Commands& commands);
void add_train_command(CLI::App& app, Commands& commands);
void add_evaluate_command(CLI::App& app, Commands& commands);
void add_predict_command(CLI::App& app, Commands& commands);
void add_inspect_command(CLI::App& app, Commands& commands);
void add_preprocess_command(CLI::App& app, Commands& commands);
void add_check_data_command(CLI::App& app, Commands& commands);
void add_bench_command(CLI::App& app, Commands& commands);
void add_recommend_command(CLI::App& app, Commands& commands);
void add_export_command(CLI::App& app, Commands& commands);
void add_report_command(CLI::App& app, Commands& commands);
void add_explain_command(CLI::App& app, Commands& commands);

}  // namespace attnrec::cli
