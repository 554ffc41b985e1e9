// The benchmark workload and harness (figures are never asserted: only their presence and the
// workload's specification).
#include <catch2/catch.hpp>

#include "attnrec/model/factory.hpp"
#include "attnrec/tools/bench.hpp"
#include "attnrec/util/error.hpp"
#include "support.hpp"

using namespace attnrec;
using namespace attnrec::test;

TEST_CASE("bench: the workload follows its specification", "[bench]") {
  const auto w = bench_workload("W1");
  CHECK(w.vocab == 50000);
  CHECK(bench_workload("W2").vocab == 2000000);
  CHECK_THROWS_AS(bench_workload("W3"), UsageError);
  const SampleSet s = make_bench_samples(w, 4000, 3);
  REQUIRE(s.size() == 4000);
  std::int64_t on_topic_history = 0, history = 0;
  for (std::int64_t i = 0; i < s.size(); ++i) {
    const auto len = s.history_length(i);
    CHECK((len >= 5 && len <= 50));
    for (auto k = s.history_offsets[i]; k < s.history_offsets[i + 1]; ++k) {
      CHECK((s.history[k] >= 1 && s.history[k] < w.vocab));
    }
    // The sample's topic is the most common (id - 1) % 100 of its history.
    std::vector<int> count(100, 0);
    for (auto k = s.history_offsets[i]; k < s.history_offsets[i + 1]; ++k)
      ++count[(s.history[k] - 1) % 100];
    on_topic_history += *std::max_element(count.begin(), count.end());
    history += len;
  }
  // 80% of history items are on topic (plus 1% of the uniform ones).
  CHECK(static_cast<double>(on_topic_history) / history == Approx(0.8).margin(0.03));
  // Positive rate: 0.5 * 0.9 + 0.5 * 0.1 = 0.5.
  CHECK(static_cast<double>(s.stats.positives) / s.size() == Approx(0.5).margin(0.03));
}

TEST_CASE("bench: the model's head sees only [context, candidate]", "[bench][model]") {
  const auto config = bench_config(bench_workload("W1"));
  Recommender model = build_recommender(config, 1000, 0);
  const auto params = model->named_parameters();
  REQUIRE(params.contains("head.0.weight"));
  CHECK(params["head.0.weight"].sizes() == std::vector<std::int64_t>{1, 128});
  CHECK_FALSE(params.contains("head.1.weight"));
}

TEST_CASE("cli bench --json reports every figure", "[cli][bench]") {
  // 10 steps of 256: one per tenth of the epoch.
  const auto r = run_cli(
      "--log-level warn bench --samples 2560 --set train.threads=1 --eval-samples 700 --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  for (const char* k : {"data_samples_per_s", "train_samples_per_s", "infer_samples_per_s",
                        "peak_rss_mb", "train_loop_samples_per_s", "eval_file_samples_per_s",
                        "peak_rss_mb_before_train", "peak_rss_mb_after_train"}) {
    INFO(k);
    CHECK(j[k].get<double>() > 0);
  }
  CHECK(j["peak_rss_mb_before_train"].get<double>() <= j["peak_rss_mb"].get<double>());
  CHECK(j["train_data_wait_seconds"].get<double>() >= 0);
  // The evaluated file: every written sample read back, with both classes.
  CHECK(j["eval_file_samples"].get<std::int64_t>() == 700);
  CHECK(j["eval_file_auc"].is_number());
  CHECK(j["eval_file_vs_train"].get<double>() == Approx(j["eval_file_samples_per_s"].get<double>() /
                                                        j["train_samples_per_s"].get<double>()));
  REQUIRE(j["loss_segments"].size() == 10);
  for (const auto& loss : j["loss_segments"]) {
    // Each tenth is the mean BCE of its one step: near ln 2 at the start of training.
    CHECK((loss.get<double>() > 0.3 && loss.get<double>() < 1.2));
  }
  CHECK(run_cli("bench --workload W9").code == 2);
}

TEST_CASE("cli bench T1: the transformer workload and full ranking by matrix product",
          "[cli][bench]") {
  CHECK(bench_workload("T1").vocab == 12002);
  const auto config = bench_config(bench_workload("T1"));
  CHECK(build_recommender(config, 100, 0)->factorised());
  const auto r = run_cli_env("OMP_WAIT_POLICY=PASSIVE",
                             "--log-level warn bench --workload T1 --samples 512 --set "
                             "train.threads=1 --rank-users 300 --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["workload"] == "T1");
  CHECK(j["rank_users"] == 300);
  CHECK(j["rank_items"] == 12000);
  CHECK(j["rank_factorised"] == true);
  CHECK(j["rank_pairs_per_s"].get<double>() > 0);
  CHECK(j["rank_hr@10"].is_number());
}

TEST_CASE("cli: compute commands run with passive OpenMP waiting unless the user chose",
          "[cli][bench]") {
  // libgomp reads OMP_WAIT_POLICY when it is loaded, so attnrec re-executes itself once with
  // PASSIVE; bench reports the policy its process started with.
  auto policy = [](const std::string& env) {
    const auto r =
        run_cli_env(env, "--log-level warn bench --samples 300 --set train.threads=1 --json");
    INFO(r.err);
    REQUIRE(r.code == 0);
    return nlohmann::json::parse(r.out)["omp_wait_policy"].get<std::string>();
  };
  CHECK(policy("-u OMP_WAIT_POLICY") == "PASSIVE");
  CHECK(policy("OMP_WAIT_POLICY=ACTIVE") == "ACTIVE");
}

TEST_CASE("cli bench --profile: traces of training steps and inference batches, summarised",
          "[cli][bench][profiler]") {
  TempDir dir;
  const auto traces = dir.file("traces");
  const auto r = run_cli(
      "--log-level warn bench --samples 2048 --set train.threads=1 --set "
      "eval.batch_size=64 --profile '" +
      traces + "' --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  // 8 steps: the first quarter is warm-up, steps 3..8 are recorded; then 20 batches of 64.
  CHECK(j["profile"]["train_steps"] == nlohmann::json::array({3, 8}));
  CHECK(j["profile"]["train_trace"] == traces + "/train.json");
  CHECK(j["profile"]["infer_batches"] == 20);
  CHECK(j["infer_batch_size"] == 64);
  if (std::system("python3 --version > /dev/null 2>&1") != 0) {
    WARN("skipped the summary: no python3 here");
    return;
  }
  const auto summary = dir.file("summary.jsonl");
  const std::string command = "python3 '" + source_path("scripts/trace_summary.py") + "' '" +
                              traces + "/train.json' '" + traces + "/infer.json' > '" + summary +
                              "' 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
  const auto rows = read_jsonl(summary);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["step"] == "attnrec::train_step");
  CHECK(rows[0]["steps"] == 6);
  CHECK(rows[1]["step"] == "attnrec::score_batch");
  CHECK(rows[1]["steps"] == 20);
  for (const auto& row : rows) {
    INFO(row.dump());
    // A step runs dozens of operators (forward, backward, Adam), a batch several.
    CHECK(row["per_step"]["host_ops"].get<double>() > 5);
    CHECK(row["per_step"]["host_top_level_ops"].get<double>() > 1);
    CHECK(row["step_wall_us"].get<double>() > 0);
    CHECK_FALSE(row["top_host_ops"].empty());
  }
  // A folder that cannot be made: exit 2 before any work, naming the flag and the path.
  write_text(dir.file("file"), "x");
  const auto bad = run_cli("bench --samples 256 --profile '" + dir.file("file") + "/sub'");
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--profile") && Catch::Contains(dir.file("file")));
}

TEST_CASE("trace_summary.py: a CUDA trace's launches, kernels and busy share per step",
          "[bench][profiler]") {
  if (std::system("python3 --version > /dev/null 2>&1") != 0) {
    WARN("skipped: no python3 here");
    return;
  }
  // Two steps of 100 us on the host, each: one top-level operator with one nested, one kernel
  // launch, a 30 us kernel and a copy; Kineto also writes a GPU copy of each step's scope.
  auto events = nlohmann::json::array();
  const auto x = [&](const std::string& cat, const std::string& name, double ts, double dur,
                     int tid) {
    events.push_back(
        {{"ph", "X"}, {"cat", cat}, {"name", name}, {"ts", ts}, {"dur", dur}, {"tid", tid}});
  };
  for (int s = 0; s < 2; ++s) {
    const double t = 1000.0 + 200.0 * s;
    x("user_annotation", "attnrec::train_step", t, 100, 1);
    x("gpu_user_annotation", "attnrec::train_step", t + 5, 90, 7);
    x("cpu_op", "aten::linear", t + 10, 40, 1);
    x("cpu_op", "aten::addmm", t + 15, 30, 1);
    x("cuda_runtime", "cudaLaunchKernel", t + 20, 5, 1);
    x("cuda_runtime", "cudaStreamSynchronize", t + 60, 30, 1);
    x("kernel", "gemm_kernel", t + 30, 30, 7);
    x("gpu_memcpy", "Memcpy HtoD", t + 25, 2, 7);
  }
  events.push_back({{"ph", "f"}, {"cat", "ac2g"}, {"name", "flow"}, {"ts", 1}});  // not an X
  TempDir dir;
  write_text(dir.file("t.json"), nlohmann::json{{"traceEvents", events}}.dump());
  const auto out = dir.file("summary.jsonl");
  REQUIRE(std::system(("python3 '" + source_path("scripts/trace_summary.py") + "' '" +
                       dir.file("t.json") + "' > '" + out + "'")
                          .c_str()) == 0);
  const auto row = read_jsonl(out).at(0);
  INFO(row.dump());
  CHECK(row["step"] == "attnrec::train_step");
  CHECK(row["steps"] == 2);  // the GPU's copies of the scope are not steps
  CHECK(row["step_wall_us"].get<double>() == Approx(100));
  const auto& per = row["per_step"];
  CHECK(per["host_ops"].get<double>() == Approx(2));
  CHECK(per["host_top_level_ops"].get<double>() == Approx(1));
  CHECK(per["cuda_runtime_calls"].get<double>() == Approx(2));
  CHECK(per["kernel_launches"].get<double>() == Approx(1));
  CHECK(per["kernels"].get<double>() == Approx(1));
  CHECK(per["kernel_us"].get<double>() == Approx(30));
  CHECK(per["copies"].get<double>() == Approx(1));
  // Kernels ran 60 us of the 300 us from the first step's start to the last one's end.
  CHECK(row["gpu_busy"].get<double>() == Approx(0.2));
  CHECK(row["top_kernels"].at(0)["name"] == "gemm_kernel");
  CHECK(row["top_host_ops"].at(0)["name"] == "aten::linear");
}
