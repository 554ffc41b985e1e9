// `attnrec generate`: the synthetic data set with a known answer (see data/README.md).

#include <spdlog/spdlog.h>
#include <filesystem>
#include <memory>

#include "attnrec/io/outputs.hpp"
#include "attnrec/tools/synthetic.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/hash.hpp"
#include "commands.hpp"

namespace attnrec::cli {

namespace {

namespace fs = std::filesystem;

/// True when every sample file in `dir` is as an earlier `attnrec generate` wrote it (its
/// oracle.json records their SHA-256): a new generate may replace them. Files changed or written
/// by anything else since are somebody's data.
bool holds_generated_data(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(dir / "oracle.json", ec)) return false;
  try {
    const auto oracle = nlohmann::json::parse(read_file((dir / "oracle.json").string()));
    const auto& hashes = oracle.at("files_sha256");
    for (const char* name : {"train.tsv", "valid.tsv", "test.tsv"}) {
      const auto file = dir / name;
      if (fs::exists(file, ec) &&
          sha256_file(file.string()) != hashes.at(name).get<std::string>()) {
        return false;
      }
    }
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

/// Generated files never replace data attnrec did not generate, unless --overwrite says so.
void check_generate_outputs(const std::vector<std::string>& files, bool replaceable,
                            bool overwrite) {
  OutputGuard guard;
  for (const auto& file : files) {
    guard.output(file, "generate");
    std::error_code ec;
    if (!overwrite && !replaceable && fs::exists(file, ec) &&
        output_kind(file) == OutputKind::regular) {
      throw UsageError(file +
                       ": exists and is not the unchanged output of an earlier attnrec "
                       "generate; choose another output or pass --overwrite to replace it; "
                       "nothing was written");
    }
  }
}

}  // namespace

void add_generate_command(CLI::App& app, Commands& commands) {
  struct Args {
    std::string out;
    SyntheticOptions options;
    std::string log;
    LogOptions log_options;
    bool overwrite = false;
  };
  auto args = std::make_shared<Args>();
  auto& o = args->options;
  auto* cmd = app.add_subcommand(
      "generate",
      "Write synthetic train/valid/test files, oracle.json with a known answer and "
      "protocol.json");
  auto* out_opt = cmd->add_option("--out,-o", args->out, "Output directory");
  cmd->add_flag("--overwrite", args->overwrite,
                "Replace existing files that an earlier generate did not write");
  auto& lo = args->log_options;
  auto* log_opt = cmd->add_option(
      "--log", args->log,
      "Instead of sample files, write a synthetic interaction log (input for `attnrec "
      "preprocess`) to this file");
  out_opt->excludes(log_opt);
  cmd->add_option("--log-format", lo.format, "--log: movielens (u::i::r::t) or taobao")
      ->capture_default_str();
  cmd->add_option("--log-users", lo.users, "--log: users")->capture_default_str();
  cmd->add_option("--log-items", lo.items, "--log: items")->capture_default_str();
  cmd->add_option("--log-categories", lo.categories, "--log: categories")->capture_default_str();
  cmd->add_option("--min-events", lo.min_events, "--log: fewest events per user")
      ->capture_default_str();
  cmd->add_option("--max-events", lo.max_events, "--log: most events per user")
      ->capture_default_str();
  cmd->add_option("--stay", lo.stay, "--log: chance the next event stays in the category")
      ->capture_default_str();
  cmd->add_option("--users", o.users, "Number of users")->capture_default_str();
  cmd->add_option("--items", o.items, "Number of items")->capture_default_str();
  cmd->add_option("--categories", o.categories, "Latent item categories")->capture_default_str();
  cmd->add_option("--train", o.train, "Training samples")->capture_default_str();
  cmd->add_option("--valid", o.valid, "Validation samples")->capture_default_str();
  cmd->add_option("--test", o.test, "Test samples")->capture_default_str();
  cmd->add_option("--min-history", o.min_history, "Shortest history")->capture_default_str();
  cmd->add_option("--max-history", o.max_history, "Longest history")->capture_default_str();
  cmd->add_option("--seed", o.seed, "Random seed")->capture_default_str();
  cmd->add_option("--noise", o.noise, "Item deviation from its category direction")
      ->capture_default_str();
  cmd->add_option("--slope", o.slope, "Weight of the best history match in the click logit")
      ->capture_default_str();
  cmd->add_option("--min-interests", o.min_interests, "Fewest interests (categories) per user")
      ->capture_default_str();
  cmd->add_option("--max-interests", o.max_interests, "Most interests per user")
      ->capture_default_str();
  cmd->add_option("--in-interest", o.in_interest,
                  "Chance that a candidate comes from the user's interests")
      ->capture_default_str();
  cmd->add_option("--bias", o.bias, "Bias of the click logit")->capture_default_str();
  cmd->add_option("--zipf", o.zipf, "Popularity exponent")->capture_default_str();
  cmd->add_option("--popularity-weight", o.popularity_weight,
                  "Weight of the candidate's log-popularity in the click logit")
      ->capture_default_str();
  commands.push_back(
      {cmd, [args, cmd]() {
         if (!args->log.empty()) {
           if (cmd->count("--seed") > 0) args->log_options.seed = args->options.seed;
           args->log_options.validate();
           check_generate_outputs({args->log}, false, args->overwrite);
           const auto r = generate_interaction_log(args->log, args->log_options);
           spdlog::info("wrote {} events of {} users to {}", r["events"].get<std::int64_t>(),
                        r["users"].get<std::int64_t>(), args->log);
           return 0;
         }
         if (args->out.empty()) {
           throw UsageError(
               "generate: --out (sample files) or --log (an "
               "interaction log) is required");
         }
         args->options.validate();
         const fs::path out(args->out);
         check_generate_outputs({(out / "train.tsv").string(), (out / "valid.tsv").string(),
                                 (out / "test.tsv").string(), (out / "oracle.json").string(),
                                 (out / "protocol.json").string()},
                                holds_generated_data(out), args->overwrite);
         const auto oracle = generate_synthetic(args->out, args->options);
         spdlog::info("wrote {}/{{train,valid,test}}.tsv, oracle.json and protocol.json",
                      args->out);
         spdlog::info(
             "oracle (Bayes-optimal) test AUC {:.4f}, logloss {:.4f}, "
             "positive rate {:.3f}",
             oracle["test"]["auc"].get<double>(), oracle["test"]["logloss"].get<double>(),
             oracle["test"]["positive_rate"].get<double>());
         return 0;
       }});
}

}  // namespace attnrec::cli
