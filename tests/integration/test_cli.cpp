// CLI tests: they run the real attnrec binary.
#include <catch2/catch.hpp>

#include "support.hpp"

using namespace attnrec::test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

TEST_CASE("cli: help, version and usage errors", "[cli]") {
  const auto help = run_cli("--help");
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Contains("generate"));
  CHECK(run_cli("--version").code == 0);
  const auto none = run_cli("");
  CHECK(none.code == 2);
  const auto unknown = run_cli("frobnicate");
  CHECK(unknown.code == 2);
  CHECK_THAT(unknown.err, StartsWith("error: "));
  const auto bad_flag = run_cli("generate --out x --users notanumber");
  CHECK(bad_flag.code == 2);
  CHECK_THAT(bad_flag.err, Contains("--users"));
}

TEST_CASE("cli: config --dump resolves defaults, file and --set", "[cli]") {
  TempDir dir;
  write_text(dir.file("c.json"), R"({"model": {"encoder": {"hidden": 32}}})");
  const auto r = run_cli("config --dump --config '" + dir.file("c.json") +
                         "' --set train.epochs=9 --set train.device=cpu");
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["model"]["encoder"]["hidden"] == 32);
  CHECK(j["train"]["epochs"] == 9);
  CHECK(j["train"]["device"] == "cpu");
  CHECK(j["model"]["embedding"]["dim"] == 64);
  // The dump is itself a valid config that resolves to the same values.
  write_text(dir.file("dumped.json"), r.out);
  const auto again = run_cli("config --dump --config '" + dir.file("dumped.json") + "'");
  CHECK(again.code == 0);
  CHECK(nlohmann::json::parse(again.out) == j);
}

TEST_CASE("cli: config errors exit 2 with the JSON path and write nothing", "[cli]") {
  TempDir dir;
  write_text(dir.file("c.json"), R"({"model": {"attention": {"tpye": "dot"}}})");
  const auto r = run_cli("config --check --config '" + dir.file("c.json") + "'");
  CHECK(r.code == 2);
  CHECK(r.out.empty());
  CHECK(r.err == "error: " + dir.file("c.json") +
                     ": /model/attention/tpye: unknown key; did you mean \"type\"?\n");
  const auto missing = run_cli("config --check --config '" + dir.file("nope.json") + "'");
  CHECK(missing.code == 2);
  CHECK_THAT(missing.err, Contains("nope.json: cannot open for reading"));
  const auto set = run_cli("config --check --set train.lr=-1");
  CHECK(set.code == 2);
  CHECK(set.err == "error: --set: /train/lr: out of range: expected (0, 10], got -1\n");
}

TEST_CASE("cli: config --doc matches docs/config.md", "[cli]") {
  const auto r = run_cli("config --doc");
  REQUIRE(r.code == 0);
  CHECK(r.out == read_text(source_path("docs/config.md")));
}

TEST_CASE("cli: generate writes the splits and the oracle deterministically", "[cli]") {
  TempDir a, b;
  const std::string flags =
      " --users 50 --items 100 --categories 6 --train 300 --valid 100 "
      "--test 100 --seed 3";
  REQUIRE(run_cli("generate --out '" + a.path().string() + "'" + flags).code == 0);
  REQUIRE(run_cli("generate --out '" + b.path().string() + "'" + flags).code == 0);
  for (const char* f : {"train.tsv", "valid.tsv", "test.tsv", "oracle.json", "protocol.json"}) {
    CHECK(read_text(a.file(f)) == read_text(b.file(f)));
  }
  const auto oracle = nlohmann::json::parse(read_text(a.file("oracle.json")));
  // protocol.json says how the data came about, with the hashes of what was written.
  const auto protocol = nlohmann::json::parse(read_text(a.file("protocol.json")));
  CHECK(protocol["split"]["protocol"] == "synthetic");
  CHECK(protocol["options"]["seed"] == 3);
  CHECK(protocol["outputs_sha256"] == oracle["files_sha256"]);
  CHECK(oracle["test"]["samples"] == 100);
  CHECK(oracle["test_planted_positions"].size() == 100);
  const auto bad = run_cli("generate --out '" + a.path().string() + "' --items 2 --categories 5");
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Contains("--items must be >= --categories"));
}

TEST_CASE("cli: preprocess options come from the one option table (flags, --config, --set)",
          "[cli][preprocess]") {
  TempDir dir;
  const auto log = write_text(dir.file("seq.txt"), "1 10 11 12 13\n2 11 12 14\n3 10 14 15 11\n");
  const std::string base = "--log-level warn preprocess -i '" + log + "' ";
  // The table's checks and messages, naming the flag and the option; nothing written.
  const auto range = run_cli(base + "-o '" + dir.file("a") + "' --negatives 0");
  CHECK(range.code == 2);
  CHECK_THAT(range.err, Contains("--negatives: /preprocess/negatives: out of range: expected "
                                 "[1, 1000], got 0"));
  const auto choice = run_cli(base + "-o '" + dir.file("a") + "' --dedup lastt");
  CHECK(choice.code == 2);
  CHECK_THAT(choice.err,
             Contains("did you mean \"last\"?") && Contains("allowed: first, last, none"));
  const auto number = run_cli(base + "-o '" + dir.file("a") + "' --min-rating four");
  CHECK(number.code == 2);
  CHECK_THAT(number.err, Contains("expected a number or null"));
  CHECK_FALSE(std::filesystem::exists(dir.file("a")));
  // Defaults < config file < --set < flags.
  const auto config = write_text(dir.file("p.json"),
                                 R"({"preprocess": {"ranking_negatives": 2, "min_history": 0,
                                     "seed": 5, "negatives": 3}})");
  const auto ok = run_cli(base + "-o '" + dir.file("b") + "' -c '" + config +
                          "' --set preprocess.seed=7 --negatives 2");
  INFO(ok.err);
  REQUIRE(ok.code == 0);
  const auto options = nlohmann::json::parse(read_text(dir.file("b/protocol.json")))["options"];
  CHECK(options["ranking_negatives"] == 2);
  CHECK(options["min_history"] == 0);
  CHECK(options["seed"] == 7);
  CHECK(options["negatives"] == 2);
  CHECK(options["dedup"] == "first");
  CHECK(options["min_rating"].is_null());
  // The reference documents them with the rest.
  const auto doc = run_cli("config --doc");
  CHECK_THAT(doc.out,
             Contains("### `preprocess.dedup`") && Contains("### `preprocess.min_rating`"));
}
