// `attnrec preprocess` (interaction log -> sample files) and `attnrec check-data` (leakage).

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <filesystem>
#include <memory>

#include "attnrec/data/leakage.hpp"
#include "attnrec/data/preprocess.hpp"
#include "attnrec/io/outputs.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/strings.hpp"
#include "commands.hpp"

namespace attnrec::cli {

void add_preprocess_command(CLI::App& app, Commands& commands) {
  struct Args {
    PreprocessOptions o;
    double min_rating = 0;
    bool overwrite = false;
  };
  auto args = std::make_shared<Args>();
  auto& o = args->o;
  auto* cmd = app.add_subcommand(
      "preprocess",
      "Turn a raw interaction log into train/valid/test sample files (see data/README.md)");
  cmd->add_option("--input,-i", o.input, "Interaction log")->required();
  cmd->add_option("--out,-o", o.out_dir, "Output directory")->required();
  cmd->add_option("--format", o.format,
                  "auto, movielens (ratings.dat), movielens_tsv (u.data), sequence, amazon, "
                  "taobao or csv")
      ->capture_default_str();
  cmd->add_option("--columns", o.csv_columns,
                  "csv: ROLE=COLUMN list (roles user, item, time, rating, category, behavior; "
                  "COLUMN a 0-based index or a header name)")
      ->delimiter(',');
  cmd->add_option("--delimiter", o.delimiter, "csv: field delimiter")->capture_default_str();
  cmd->add_flag("--header", o.csv_header, "csv with index-only --columns: skip the first line");
  cmd->add_option("--min-rating", args->min_rating,
                  "Keep interactions with rating >= this (e.g. 4 for MovieLens positives)");
  cmd->add_option("--behaviors", o.behaviors, "Keep only these behaviours (e.g. pv,buy)")
      ->delimiter(',');
  cmd->add_option("--dedup", o.dedup, "first, last or none: repeated (user, item) pairs")
      ->capture_default_str();
  cmd->add_option("--min-user-interactions", o.min_user_interactions,
                  "k-core: users need at least this many interactions")
      ->capture_default_str();
  cmd->add_option("--min-item-interactions", o.min_item_interactions,
                  "k-core: items need at least this many interactions")
      ->capture_default_str();
  cmd->add_option("--max-history", o.max_history, "Most recent events kept in a history")
      ->capture_default_str();
  cmd->add_option("--min-history", o.min_history,
                  "Targets with fewer earlier events make no sample")
      ->capture_default_str();
  cmd->add_option("--split", o.split, "leave_last_out or temporal")->capture_default_str();
  cmd->add_option("--valid-fraction", o.valid_fraction, "temporal: share of events in valid")
      ->capture_default_str();
  cmd->add_option("--test-fraction", o.test_fraction, "temporal: share of events in test")
      ->capture_default_str();
  cmd->add_option("--negatives", o.negatives, "Negative samples per positive")
      ->capture_default_str();
  cmd->add_option("--sampling", o.sampling, "uniform or popularity")->capture_default_str();
  cmd->add_option("--ranking-negatives", o.ranking_negatives,
                  "Frozen negatives per test positive in test_candidates.tsv, and per validation "
                  "positive in "
                  "valid_candidates.tsv (0: none)")
      ->capture_default_str();
  cmd->add_option("--ranking-sampling", o.ranking_sampling, "uniform or popularity")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of all sampling")->capture_default_str();
  cmd->add_flag("--overwrite", args->overwrite,
                "Replace files in --out that an earlier preprocess did not write (or that were "
                "changed since)");
  commands.push_back(
      {cmd, [args, cmd]() {
         auto o = args->o;
         if (cmd->count("--min-rating") > 0) o.min_rating = args->min_rating;
         OutputGuard guard;
         guard.input(o.input, "--input");
         for (const auto& name : preprocess_output_files()) {
           guard.output((std::filesystem::path(o.out_dir) / name).string(), "--out");
         }
         check_preprocess_outputs(o.out_dir, args->overwrite);
         const auto stats = preprocess(o);
         const auto& s = stats["splits"];
         fmt::print("kept {} users, {} items, {} interactions (density {:.5f})\n",
                    stats["kept"]["users"].get<std::int64_t>(),
                    stats["kept"]["items"].get<std::int64_t>(),
                    stats["kept"]["interactions"].get<std::int64_t>(),
                    stats["kept"]["density"].get<double>());
         for (const char* split : {"train", "valid", "test"}) {
           fmt::print("{:<6} {:>10} samples  {:>9} positives  mean history {:.1f}\n", split,
                      s[split]["samples"].get<std::int64_t>(),
                      s[split]["positives"].get<std::int64_t>(),
                      s[split]["mean_history_length"].get<double>());
         }
         fmt::print(
             "leakage check passed; wrote {}/{{train,train_positives,valid,test}}.tsv, stats.json, "
             "protocol.json\n",
             o.out_dir);
         return 0;
       }});
}

void add_check_data_command(CLI::App& app, Commands& commands) {
  struct Args {
    CheckDataOptions o;
    std::string output;
  };
  auto args = std::make_shared<Args>();
  auto& o = args->o;
  auto* cmd = app.add_subcommand("check-data",
                                 "Check sample files for leakage against their interaction log");
  cmd->add_option("--dir", o.dir, "A preprocess output directory (default for every file)");
  cmd->add_option("--train", o.train, "Training samples");
  cmd->add_option("--valid", o.valid, "Validation samples");
  cmd->add_option("--test", o.test, "Test samples");
  cmd->add_option("--interactions", o.interactions, "Interaction log (user, item, time)");
  cmd->add_option("--candidates", o.candidates, "Ranking candidates file (test positives)");
  cmd->add_option("--valid-candidates", o.valid_candidates,
                  "Ranking candidates of the validation positives");
  cmd->add_option("--vocab", o.vocab, "Item vocabulary of a run (RUN_DIR/items.vocab)");
  cmd->add_option("--output", args->output, "Write the report as JSON");
  commands.push_back({cmd, [args]() {
                        const auto files = args->o.resolved();
                        OutputGuard()
                            .input(files.train, "--train")
                            .input(files.valid, "--valid")
                            .input(files.test, "--test")
                            .input(files.interactions, "--interactions")
                            .input(files.candidates, "--candidates")
                            .input(files.valid_candidates, "--valid-candidates")
                            .input(files.vocab, "--vocab")
                            .output(args->output, "--output");
                        const auto report = check_data(args->o);
                        fmt::print("{}", format_leakage_report(report));
                        if (!args->output.empty())
                          write_file_atomic(args->output, report.dump(2) + "\n");
                        if (!report["ok"].get<bool>()) {
                          throw DataError(fmt::format(
                              "check-data: {} leakage violation(s) found (kinds and file:line "
                              "examples above); fix "
                              "the sample files or regenerate them with `attnrec preprocess`",
                              report["violations_total"].get<std::int64_t>()));
                        }
                        return 0;
                      }});
}

}  // namespace attnrec::cli
