// `attnrec generate`: the synthetic data set with a known answer (see data/README.md).

#include <memory>
#include <spdlog/spdlog.h>

#include "attnrec/data/synthetic.hpp"
#include "attnrec/util/error.hpp"
#include "commands.hpp"

namespace attnrec::cli {

void add_generate_command(CLI::App& app, Commands& commands) {
  struct Args {
    std::string out;
    SyntheticOptions options;
    std::string log;
    LogOptions log_options;
  };
  auto args = std::make_shared<Args>();
  auto& o = args->options;
  auto* cmd = app.add_subcommand(
      "generate", "Write synthetic train/valid/test files and oracle.json with a known answer");
  auto* out_opt = cmd->add_option("--out,-o", args->out, "Output directory");
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
  commands.push_back({cmd, [args, cmd]() {
                        if (!args->log.empty()) {
                          if (cmd->count("--seed") > 0) args->log_options.seed = args->options.seed;
                          const auto r = generate_interaction_log(args->log, args->log_options);
                          spdlog::info("wrote {} events of {} users to {}",
                                       r["events"].get<std::int64_t>(),
                                       r["users"].get<std::int64_t>(), args->log);
                          return 0;
                        }
                        if (args->out.empty()) {
                          throw UsageError("generate: --out (sample files) or --log (an "
                                           "interaction log) is required");
                        }
                        const auto oracle = generate_synthetic(args->out, args->options);
                        spdlog::info("wrote {}/{{train,valid,test}}.tsv and oracle.json", args->out);
                        spdlog::info("oracle (Bayes-optimal) test AUC {:.4f}, logloss {:.4f}, "
                                     "positive rate {:.3f}",
                                     oracle["test"]["auc"].get<double>(),
                                     oracle["test"]["logloss"].get<double>(),
                                     oracle["test"]["positive_rate"].get<double>());
                        return 0;
                      }});
}

}  // namespace attnrec::cli
