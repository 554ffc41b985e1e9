// `attnrec recommend`: flags -> a RecommendRequest; the use case lives in tools/recommend.hpp.

#include <spdlog/spdlog.h>
#include <memory>

#include "attnrec/dist/world.hpp"
#include "attnrec/tools/recommend.hpp"
#include "commands.hpp"

namespace attnrec::cli {

void add_recommend_command(CLI::App& app, Commands& commands) {
  auto r = std::make_shared<RecommendRequest>();
  auto exclude = std::make_shared<std::string>("seen");
  auto* cmd = app.add_subcommand(
      "recommend", "Write the K best items for each user, leaving out the items already seen");
  cmd->add_option("--checkpoint", r->checkpoint,
                  "Checkpoint file, or a run directory (its best model)")
      ->required();
  cmd->add_option("--users", r->users,
                  "Sample file with user and history columns (e.g. test.tsv): one list per "
                  "distinct user, from the history of its last line");
  cmd->add_flag("--all", r->all,
                "Every user of the interaction log (--interactions, default: interactions.tsv "
                "beside the run's data.train), history = the user's last data.max_history events");
  cmd->add_option("--interactions", r->interactions,
                  "user<TAB>item[<TAB>time] log with a header: the users of --all; with --users, "
                  "more seen items to leave out");
  cmd->add_option("--candidates", r->candidates,
                  "user<TAB>item file with a header: rank only each user's listed items (one "
                  "per line); users without a line get no list");
  cmd->add_option("--k", r->k, "Items per user")->capture_default_str();
  cmd->add_option("--exclude", *exclude,
                  "seen: leave out every item the user has interacted with (histories, positive "
                  "items, the log); none: rank every item")
      ->capture_default_str()
      ->check(CLI::IsMember({"seen", "none"}));
  cmd->add_option("--format", r->format, "tsv (user, rank, item, score) or jsonl (one per user)")
      ->capture_default_str()
      ->check(CLI::IsMember({"tsv", "jsonl"}));
  cmd->add_option("--output", r->output, "Output file (- for stdout)")->required();
  cmd->add_option("--set", r->overrides,
                  "KEY=VALUE: how to read and score (data.*, eval.*, train.device, "
                  "train.threads); repeatable");
  commands.push_back({cmd, [r, exclude]() {
                        require_single_process(discover_world(), "attnrec recommend");
                        r->exclude_seen = *exclude == "seen";
                        const auto summary = run_recommend(*r);
                        spdlog::info(
                            "wrote {} items for each of {} users to {} ({:.0f} users/s, {:.0f} "
                            "(user, item) pairs/s)",
                            summary["k"].get<std::int64_t>(), summary["users"].get<std::int64_t>(),
                            r->output, summary["users_per_second"].get<double>(),
                            summary["pairs_per_second"].get<double>());
                        return 0;
                      }});
}

}  // namespace attnrec::cli
