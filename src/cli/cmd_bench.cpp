// `attnrec bench`: throughput and memory on a synthetic workload (see train/bench.hpp).

#include <fmt/format.h>
#include <memory>

#include "attnrec/dist/world.hpp"
#include "attnrec/tools/bench.hpp"
#include "commands.hpp"

namespace attnrec::cli {

void add_bench_command(CLI::App& app, Commands& commands) {
  struct Args {
    BenchOptions o;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "bench", "Measure data-pipeline, training and inference throughput and peak RSS");
  cmd->add_option("--workload", args->o.workload,
                  "W1 (vocabulary 50k) or W2 (2M): LSTM + additive attention; T1 (12k items): "
                  "SASRec-style transformer")
      ->capture_default_str()
      ->check(CLI::IsMember({"W1", "W2", "T1"}));
  cmd->add_option("--samples", args->o.samples, "Training samples (default: the workload's 200k)")
      ->check(CLI::Range(std::int64_t{256}, std::int64_t{1} << 32));
  cmd->add_option("--set", args->o.overrides,
                  "KEY=VALUE override of the benchmark model's config, e.g. --set train.threads=1 "
                  "--set train.optimizer=lazy_adam; repeatable");
  cmd->add_option("--eval-samples", args->o.eval_samples,
                  "Also evaluate the trained model on a file of this many fresh samples (read, "
                  "score, metrics; 0: skip)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 32));
  cmd->add_option("--rank-users", args->o.rank_users,
                  "Also rank this many fresh histories against every vocabulary item (full "
                  "ranking; 0: skip)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 24));
  cmd->add_option("--profile", args->o.profile,
                  "Also write Chrome traces of the profiler to this folder: train.json (20 "
                  "training steps) and infer.json (20 inference batches); summarise them with "
                  "scripts/trace_summary.py");
  cmd->add_flag("--json", args->json, "Print one JSON object instead of a table");
  commands.push_back(
      {cmd, [args]() {
         require_single_process(discover_world(), "attnrec bench");
         const auto r = run_bench(args->o);
         if (args->json) {
           fmt::print("{}\n", r.dump());
           return 0;
         }
         fmt::print("workload {}: {} samples, vocabulary {}, {} thread(s)\n",
                    r["workload"].get<std::string>(), r["samples"].get<std::int64_t>(),
                    r["vocab"].get<std::int64_t>(), r["threads"].get<int>());
         for (const char* k :
              {"data_samples_per_s", "train_samples_per_s", "train_loop_samples_per_s",
               "infer_samples_per_s", "eval_file_samples_per_s", "rank_seconds", "rank_pairs_per_s",
               "peak_rss_mb"}) {
           if (r.contains(k)) {
             const double v = r[k].get<double>();
             fmt::print("{:<26}{:>12}\n", k, fmt::format(v < 100 ? "{:.2f}" : "{:.0f}", v));
           }
         }
         if (r.contains("eval_file_vs_train")) {
           fmt::print("{:<26}{:>12.2f}\n", "eval_file_vs_train",
                      r["eval_file_vs_train"].get<double>());
         }
         return 0;
       }});
}

}  // namespace attnrec::cli
