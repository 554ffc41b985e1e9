// train / evaluate / predict through the real binary, on a tiny generated data set.
#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>
#include <set>
#include <sstream>

#include "attnrec/util/strings.hpp"
#include "cli_data.hpp"
#include "support.hpp"

using namespace attnrec::test;
using Catch::Matchers::Contains;

namespace {

/// A tiny data set and a trained run, shared by the tests below (built once per process).
struct TrainedRun {
  TempDir dir;
  std::string data = dir.file("data");
  std::string run = dir.file("run");
  CliResult train;
  TrainedRun() {
    run_cli("generate --out '" + data +
            "' --users 40 --items 60 --categories 6 --train 600 "
            "--valid 200 --test 200 --seed 5");
    write_text(dir.file("c.json"), R"({"data": {"train": ")" + data + R"(/train.tsv",
        "valid": ")" + data + R"(/valid.tsv", "test": ")" +
                                       data + R"(/test.tsv"},
        "model": {"embedding": {"dim": 8}, "encoder": {"hidden": 8}, "head": {"hidden": [8]}},
        "train": {"epochs": 2, "batch_size": 64, "threads": 1, "device": "cpu"}})");
    train = run_cli("train --config '" + dir.file("c.json") + "' --run-dir '" + run + "'");
  }
};

TrainedRun& trained() {
  static TrainedRun r;
  return r;
}

}  // namespace

TEST_CASE("cli train writes a complete run directory", "[cli][train]") {
  auto& r = trained();
  INFO(r.train.err);
  REQUIRE(r.train.code == 0);
  CHECK_THAT(r.train.out, Contains("test metrics"));
  CHECK_THAT(r.train.out, Contains("auc"));
  namespace fs = std::filesystem;
  for (const char* f :
       {"config.json", "items.vocab", "users.vocab", "metrics.jsonl", "summary.json", "train.log",
        "checkpoints/best.pt", "checkpoints/final.pt"}) {
    INFO(f);
    CHECK(fs::exists(r.run + "/" + f));
  }
  // metrics.jsonl: one validation row per epoch, then the test row.
  std::vector<nlohmann::json> rows;
  std::istringstream lines(read_text(r.run + "/metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) rows.push_back(nlohmann::json::parse(line));
  REQUIRE(rows.size() == 3);
  CHECK(rows[0]["split"] == "valid");
  CHECK(rows[0]["epoch"] == 0);
  CHECK(rows[1]["step"] == 20);  // 600 samples / 64 = 10 steps per epoch
  CHECK(rows[2]["split"] == "test");
  for (const char* key : {"auc", "gauc", "logloss", "accuracy", "precision", "recall", "f1",
                          "samples", "positives", "oov_rate"}) {
    CHECK(rows[2].contains(key));
  }
  const auto summary = nlohmann::json::parse(read_text(r.run + "/summary.json"));
  CHECK(summary["steps"] == 20);
  CHECK(summary["test"]["samples"] == 200);
  // A second train into the same directory is refused rather than destroying the run.
  const auto again =
      run_cli("train --config '" + r.dir.file("c.json") + "' --run-dir '" + r.run + "'");
  CHECK(again.code == 2);
  CHECK_THAT(again.err, Contains("already holds a run; pass --overwrite"));
}

TEST_CASE("cli train --overwrite replaces a run killed before it wrote its config",
          "[cli][train]") {
  auto& r = trained();
  REQUIRE(r.train.code == 0);
  // What a training start leaves when killed in its first moments.
  const auto run = r.dir.file("interrupted");
  std::filesystem::create_directories(run + "/checkpoints");
  write_text(run + "/.lock", "");
  write_text(run + "/train.log", "");
  const std::string train = "train --config '" + r.dir.file("c.json") + "' --run-dir '" + run + "'";
  const auto refused = run_cli(train);
  CHECK(refused.code == 2);
  CHECK_THAT(refused.err, Contains("already holds a run; pass --overwrite"));
  const auto replaced = run_cli(train + " --overwrite");
  INFO(replaced.err);
  CHECK(replaced.code == 0);
  CHECK(std::filesystem::exists(run + "/checkpoints/final.pt"));
  // A directory with anything else in it is never deleted.
  const auto foreign = r.dir.file("foreign");
  std::filesystem::create_directories(foreign + "/checkpoints");
  write_text(foreign + "/notes.txt", "mine");
  const auto kept = run_cli("train --config '" + r.dir.file("c.json") + "' --run-dir '" + foreign +
                            "' --overwrite");
  CHECK(kept.code == 2);
  CHECK_THAT(kept.err, Contains("not empty and not a run directory"));
  CHECK(std::filesystem::exists(foreign + "/notes.txt"));
}

TEST_CASE("cli evaluate scores a file with the stored config and vocabulary", "[cli][train]") {
  auto& r = trained();
  REQUIRE(r.train.code == 0);
  const auto out = r.dir.file("m.json"), preds = r.dir.file("p.tsv");
  const auto e =
      run_cli("evaluate --checkpoint '" + r.run + "' --data '" + r.data + "/test.tsv' --output '" +
              out + "' --predictions '" + preds + "' --oracle '" + r.data + "/oracle.json'");
  INFO(e.err);
  REQUIRE(e.code == 0);
  CHECK_THAT(e.out, Contains("auc"));
  const auto m = nlohmann::json::parse(read_text(out));
  // Same numbers as the test row written at the end of training (same code, same model).
  const auto summary = nlohmann::json::parse(read_text(r.run + "/summary.json"));
  CHECK(m["auc"].get<double>() == Approx(summary["test"]["auc"].get<double>()));
  CHECK(m["samples"] == 200);
  CHECK(m.contains("attention_mass_ratio"));
  // The protocol of generated data is known: generate wrote protocol.json beside it.
  CHECK(m["protocol"]["split"] == "synthetic");
  CHECK(m["protocol"]["preprocess_protocol"] == r.data + "/protocol.json");
  const auto p = read_text(preds);
  CHECK(std::count(p.begin(), p.end(), '\n') == 201);
  CHECK(p.rfind("line\tuser\titem\tlabel\tscore\n", 0) == 0);
}

TEST_CASE("cli predict works without a label column", "[cli][train]") {
  auto& r = trained();
  REQUIRE(r.train.code == 0);
  write_text(r.dir.file("nolabel.tsv"), "u1\ti3\ti4,i5\nu2\tunseen\t\n");
  const auto out = r.dir.file("scores.tsv");
  const auto p = run_cli("predict --checkpoint '" + r.run + "/checkpoints/final.pt' --data '" +
                         r.dir.file("nolabel.tsv") + "' --output '" + out + "'");
  INFO(p.err);
  REQUIRE(p.code == 0);
  const auto text = read_text(out);
  CHECK(text.rfind("line\tuser\titem\tscore\n1\tu1\ti3\t", 0) == 0);
  CHECK_THAT(text, Contains("\n2\tu2\tunseen\t"));
}

TEST_CASE("cli predict: two threads score a large file exactly as one does", "[cli][train]") {
  // Over 2 MiB, so that two threads also split the parse; no observer, so that they score
  // whole batches in parallel. Both must reproduce the one-thread output byte for byte.
  auto& r = trained();
  REQUIRE(r.train.code == 0);
  const std::string test = read_text(r.data + "/test.tsv");
  const auto body = test.find('\n') + 1;  // after the header
  std::string big = test.substr(0, body);
  while (big.size() < (std::size_t(5) << 19)) big.append(test, body);
  write_text(r.dir.file("big.tsv"), big);
  std::string outputs[2];
  for (const int threads : {1, 2}) {
    const auto out = r.dir.file("big-" + std::to_string(threads) + ".tsv");
    const auto p = run_cli(
        "predict --checkpoint '" + r.run + "' --data '" + r.dir.file("big.tsv") + "' --output '" +
        out + "' --set eval.batch_size=256 --set train.threads=" + std::to_string(threads));
    INFO(p.err);
    REQUIRE(p.code == 0);
    outputs[threads - 1] = read_text(out);
  }
  // A header and a line per sample, as the input.
  CHECK(std::count(outputs[0].begin(), outputs[0].end(), '\n') ==
        std::count(big.begin(), big.end(), '\n'));
  CHECK(outputs[0] == outputs[1]);
}

TEST_CASE("cli evaluate: bad inputs are clear errors", "[cli][train]") {
  auto& r = trained();
  REQUIRE(r.train.code == 0);
  // A file without a role the model needs (the candidate item): the error names it.
  write_text(r.dir.file("no_item.tsv"), "label\tuser\thistory\n1\tu1\ti2\n0\tu1\ti1\n");
  auto e =
      run_cli("evaluate --checkpoint '" + r.run + "' --data '" + r.dir.file("no_item.tsv") + "'");
  CHECK(e.code == 2);
  CHECK_THAT(e.err, Contains("no_item.tsv: has no item column (its columns, from its header: "
                             "[label, user, history]); the model needs the roles label, history, "
                             "item"));
  // A missing checkpoint.
  e = run_cli("evaluate --checkpoint '" + r.dir.file("nope") + "' --data '" + r.data +
              "/test.tsv'");
  CHECK(e.code == 2);
  CHECK_THAT(e.err, Contains("nope: no such checkpoint or run directory"));
  // A corrupted checkpoint file.
  write_text(r.dir.file("junk.pt"), "not a checkpoint");
  e = run_cli("evaluate --checkpoint '" + r.dir.file("junk.pt") + "' --data '" + r.data +
              "/test.tsv'");
  CHECK(e.code == 2);
  CHECK_THAT(e.err, Contains("junk.pt: not an attnrec checkpoint"));
  // A checkpoint whose vocabulary file is missing.
  TempDir copy;
  std::filesystem::copy(r.run, copy.path(), std::filesystem::copy_options::recursive);
  std::filesystem::remove(copy.file("items.vocab"));
  e = run_cli("evaluate --checkpoint '" + copy.path().string() + "' --data '" + r.data +
              "/test.tsv'");
  CHECK(e.code == 2);
  CHECK_THAT(e.err, Contains("items.vocab is missing"));
  // A vocabulary file edited after training.
  std::filesystem::copy(r.run + "/items.vocab", copy.file("items.vocab"));
  std::ofstream(copy.file("items.vocab"), std::ios::app) << "extra\t1\n";
  e = run_cli("evaluate --checkpoint '" + copy.path().string() + "' --data '" + r.data +
              "/test.tsv'");
  CHECK(e.code == 2);
  CHECK_THAT(e.err, Contains("has changed since the checkpoint was written"));
}

TEST_CASE("cli train: config errors stop before any data is read", "[cli][train]") {
  TempDir dir;
  const auto e = run_cli(
      "train --set data.train=/nonexistent.tsv --set model.attention.heads=0 "
      "--run-dir '" +
      dir.file("run") + "'");
  CHECK(e.code == 2);
  CHECK_THAT(e.err, Contains("/model/attention/heads: out of range"));
  CHECK_FALSE(std::filesystem::exists(dir.file("run")));
  const auto cuda = run_cli(
      "train --set data.train=/nonexistent.tsv --set train.device=cuda "
      "--run-dir '" +
      dir.file("run") + "'");
  CHECK(cuda.code == 2);
  CHECK_THAT(cuda.err, Contains("CUDA is not available"));
  const auto missing = run_cli("train --set data.train=" + dir.file("none.tsv") + " --run-dir '" +
                               dir.file("run2") + "'");
  CHECK(missing.code == 2);
  CHECK_THAT(missing.err, Contains("none.tsv: cannot open sample file"));
}

TEST_CASE("cli evaluate/predict: any column order and extra columns, by header or data.columns",
          "[cli][train]") {
  auto& r = trained();
  REQUIRE(r.train.code == 0);
  // The test split rewritten as history, time, item, label, user (a time column the model does
  // not use), once with a header and once without.
  std::istringstream lines(read_text(r.data + "/test.tsv"));
  std::string line, with_header = "history\ttime\titem\tlabel\tuser\n", bare;
  std::getline(lines, line);  // the original header
  for (int n = 0; std::getline(lines, line); ++n) {
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string x; std::getline(fields, x, '\t');) f.push_back(x);
    REQUIRE(f.size() == 4);  // label user item history
    const std::string row =
        f[3] + "\t" + std::to_string(1000 + n) + "\t" + f[2] + "\t" + f[0] + "\t" + f[1] + "\n";
    with_header += row;
    bare += row;
  }
  write_text(r.dir.file("reordered.tsv"), with_header);
  write_text(r.dir.file("bare.tsv"), bare);
  const auto auc = [&](const std::string& file, const std::string& extra) {
    const auto out = r.dir.file("m-" + std::to_string(std::hash<std::string>()(file + extra)));
    const auto e = run_cli("evaluate --checkpoint '" + r.run + "' --data '" + file + "' " + extra +
                           " --output '" + out + "'");
    INFO(e.err);
    REQUIRE(e.code == 0);
    return nlohmann::json::parse(read_text(out))["auc"].get<double>();
  };
  const double original = auc(r.data + "/test.tsv", "");
  CHECK(auc(r.dir.file("reordered.tsv"), "") == original);
  CHECK(auc(r.dir.file("bare.tsv"),
            "--set 'data.columns=[\"history\",\"time\",\"item\",\"label\",\"user\"]'") == original);
  // Without a header and without data.columns, the field count tells it is another layout.
  auto e = run_cli("evaluate --checkpoint '" + r.run + "' --data '" + r.dir.file("bare.tsv") + "'");
  CHECK(e.code == 2);
  CHECK_THAT(e.err, Contains("bare.tsv:1: has 5 tab-separated fields and no header, but "
                             "data.columns names 4 ([label, user, item, history]); the model "
                             "needs the roles label, history, item. Name the file's columns"));
  CHECK_THAT(e.err, !Contains("on_bad_line"));
  // predict: the same file, the label column unused.
  e = run_cli("predict --checkpoint '" + r.run + "' --data '" + r.dir.file("reordered.tsv") +
              "' --output '" + r.dir.file("p.tsv") + "'");
  INFO(e.err);
  CHECK(e.code == 0);
  const auto predictions = read_text(r.dir.file("p.tsv"));
  CHECK(std::count(predictions.begin(), predictions.end(), '\n') == 201);
  // Model options cannot be changed when scoring.
  e = run_cli("evaluate --checkpoint '" + r.run + "' --data '" + r.data +
              "/test.tsv' --set model.encoder.hidden=16");
  CHECK(e.code == 2);
  CHECK_THAT(e.err, Contains("/model/encoder/hidden: describes the trained model"));
}

namespace {

/// --set flags that run configs/default.json small and short on prepared_log()'s files (the
/// validation file is left to the caller).
std::string small_recipe(const std::string& data, int epochs) {
  return " --set data.train='" + data + "/train_positives.tsv' --set data.test='" + data +
         "/test.tsv' --set train.epochs=" + std::to_string(epochs) +
         " --set model.embedding.dim=8 --set model.encoder.hidden=8 --set "
         "model.attention.hidden=8 --set train.threads=1 --set train.device=cpu";
}

}  // namespace

TEST_CASE("cli: train_positives.tsv with negatives drawn by the trainer, and the recipe config",
          "[cli][negatives]") {
  TempDir dir;
  const auto data = prepared_log(dir);
  // configs/default.json, the real-data recipe, on the prepared files (small and short).
  const std::string sets = small_recipe(data, 2) + " --set data.valid='" + data + "/valid.tsv'";
  const auto train = run_cli_env("OMP_WAIT_POLICY=PASSIVE",
                                 "train --config '" + source_path("configs/default.json") +
                                     "' --run-dir '" + dir.file("run") + "'" + sets);
  INFO(train.err);
  REQUIRE(train.code == 0);
  CHECK_THAT(train.err, Contains("negatives: 8 per positive (uniform)") &&
                            Contains("the file's own negatives are not used"));
  CHECK_THAT(train.err, Contains("data wait"));
  // Without drawn negatives a positives-only file cannot train: the error names it.
  const auto pointwise = run_cli_env(
      "OMP_WAIT_POLICY=PASSIVE", "train --config '" + source_path("configs/default.json") +
                                     "' --run-dir '" + dir.file("run2") + "'" + sets +
                                     " --set train.negatives.per_positive=0 --set train.loss=bce");
  CHECK(pointwise.code == 2);
  CHECK_THAT(pointwise.err, Contains("train_positives.tsv: all") && Contains("labels are 1"));
}

TEST_CASE("cli: early stopping and the best model on NDCG@10 of the frozen validation candidates",
          "[cli][negatives]") {
  TempDir dir;
  const auto data = prepared_log(dir);
  const std::string sets = small_recipe(data, 3) + " --set train.early_stopping.metric=ndcg@10";
  const auto config = "train --config '" + source_path("configs/default.json") + "' --run-dir '";
  // valid_candidates.tsv is found beside data.valid.
  const auto train =
      run_cli_env("OMP_WAIT_POLICY=PASSIVE", config + dir.file("run") + "'" + sets +
                                                 " --set data.valid='" + data + "/valid.tsv'");
  INFO(train.err);
  REQUIRE(train.code == 0);
  CHECK_THAT(train.err, Contains("valid_candidates.tsv: ") &&
                            Contains("ranked against 10 frozen candidates each"));
  // Every validation row carries the ranking; "best" marks each new NDCG@10 maximum.
  double best = -1.0;
  int rows = 0;
  for (const auto& row : read_jsonl(dir.file("run/metrics.jsonl"))) {
    if (row["split"] != "valid") continue;
    ++rows;
    const double ndcg = row["ndcg@10"].get<double>();
    CHECK(row["ranking"]["protocol"] == "sampled");
    CHECK(row["ranking"]["mean_candidates_per_row"].get<double>() == Approx(10.0));
    CHECK(row["best"].get<bool>() == (ndcg > best));
    best = std::max(best, ndcg);
  }
  CHECK(rows == 3);
  // Without candidates beside the validation file, and none named, the error says what to do.
  namespace fs = std::filesystem;
  fs::create_directories(dir.file("elsewhere"));
  fs::copy_file(data + "/valid.tsv", dir.file("elsewhere/valid.tsv"));
  const auto missing = run_cli_env("OMP_WAIT_POLICY=PASSIVE",
                                   config + dir.file("run2") + "'" + sets + " --set data.valid='" +
                                       dir.file("elsewhere/valid.tsv") + "'");
  CHECK(missing.code != 0);
  CHECK_THAT(missing.err, Contains("/train/early_stopping/metric: \"ndcg@10\"") &&
                              Contains("no valid_candidates.tsv beside") &&
                              Contains("set data.valid_candidates"));
  // Named explicitly, the file is used from anywhere.
  const auto named =
      run_cli_env("OMP_WAIT_POLICY=PASSIVE",
                  config + dir.file("run3") + "'" + sets + " --set data.valid='" +
                      dir.file("elsewhere/valid.tsv") + "' --set data.valid_candidates='" + data +
                      "/valid_candidates.tsv' --set train.epochs=1");
  INFO(named.err);
  CHECK(named.code == 0);
}

TEST_CASE("cli: configs/sasrec.json with next-item training on train_sequences.tsv",
          "[cli][negatives][transformer][softmax]") {
  TempDir dir;
  const auto data = prepared_log(dir);
  const std::string sets =
      " --set data.train='" + data + "/train_sequences.tsv' --set data.valid='" + data +
      "/valid.tsv' --set data.test='" + data +
      "/test.tsv' --set train.epochs=2 --set model.embedding.dim=8 "
      "--set train.threads=1 --set train.device=cpu --set train.next_item=true";
  // Trains `config_file` into `run` with the small settings above plus `extra`.
  const auto train_with = [&](const std::string& config_file, const std::string& run,
                              const std::string& extra = "") {
    return run_cli_env("OMP_WAIT_POLICY=PASSIVE", "train --config '" + source_path(config_file) +
                                                      "' --run-dir '" + dir.file(run) + "'" + sets +
                                                      extra);
  };
  const auto train = train_with("configs/sasrec.json", "run");
  INFO(train.err);
  REQUIRE(train.code == 0);
  // The recipe: a full softmax over every item, selected on full-ranking NDCG@10.
  CHECK_THAT(train.err, Contains("loss softmax: every case against all") &&
                            Contains("ranked against every item their user has not interacted"));
  const auto rows = read_jsonl(dir.file("run/metrics.jsonl"));
  REQUIRE(rows.size() == 3);
  for (int i = 0; i < 2; ++i) {
    CHECK(rows[i]["ranking"]["protocol"] == "full");
    CHECK(rows[i]["ndcg@10"].is_number());
    // More than the 10 frozen candidates of the sampled protocol: every unseen item.
    CHECK(rows[i]["ranking"]["mean_candidates_per_row"].get<double>() > 10);
  }
  CHECK(rows[0]["best"] == true);
  CHECK(rows.back()["split"] == "test");
  CHECK(rows.back()["auc"].is_number());
  // The validation figure is the model's own, without dropout (sasrec.json has 0.2): `evaluate`
  // of the best checkpoint on valid.tsv, with the same exclusions (each user's training events:
  // the log without the validation and test targets), gives the best row's NDCG@10 exactly.
  std::set<std::string> targets;
  std::vector<std::string_view> f;
  for (const char* file : {"/valid.tsv", "/test.tsv"}) {
    std::istringstream lines(read_text(data + file));
    for (std::string line; std::getline(lines, line);) {
      attnrec::split(line, '\t', f);
      if (f.size() >= 5 && f[0] == "1") {
        targets.insert(std::string(f[1]) + "\t" + std::string(f[2]) + "\t" + std::string(f[4]));
      }
    }
  }
  std::istringstream log(read_text(data + "/interactions.tsv"));
  std::string training_log;
  std::size_t dropped = 0;
  for (std::string event; std::getline(log, event);) {
    if (targets.count(event)) {
      ++dropped;
    } else {
      training_log += event + "\n";
    }
  }
  REQUIRE(dropped == targets.size());
  const auto valid_eval = run_cli("evaluate --checkpoint '" + dir.file("run") + "' --data '" +
                                  data + "/valid.tsv' --ranking full --ks 10 --interactions '" +
                                  write_text(dir.file("training_log.tsv"), training_log) +
                                  "' --output '" + dir.file("valid_eval.json") + "'");
  INFO(valid_eval.err);
  REQUIRE(valid_eval.code == 0);
  const auto evaluated = nlohmann::json::parse(read_text(dir.file("valid_eval.json")));
  double best_ndcg = -1;
  for (int i = 0; i < 2; ++i) {
    if (rows[i]["best"] == true) best_ndcg = rows[i]["ndcg@10"].get<double>();
  }
  CHECK(evaluated["ranking"]["full"]["ndcg@10"].get<double>() == Approx(best_ndcg).margin(1e-12));
  // configs/sasrec_bce.json: 8 negatives for each of the 50 positions a window can have.
  const auto bce = train_with("configs/sasrec_bce.json", "run_bce");
  INFO(bce.err);
  REQUIRE(bce.code == 0);
  CHECK_THAT(bce.err, Contains("next-item training: every position") &&
                          Contains("8 negatives of its own (400 drawn per sample)"));
  // A model whose score does not factorise cannot train every position.
  const auto bad = train_with("configs/sasrec.json", "run2",
                              " --set model.attention.type=additive --set "
                              "model.attention.query=target --set model.head.type=mlp");
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Contains("/train/next_item: needs a factorised model"));
  const auto leaky = train_with("configs/sasrec.json", "run3", " --set model.encoder.causal=false");
  CHECK(leaky.code == 2);
  CHECK_THAT(leaky.err, Contains("position t would see the event it is trained to predict"));
  // The full ranking protocol only serves the ranking metrics: anything else is refused.
  const auto unranked =
      train_with("configs/sasrec.json", "run4", " --set train.early_stopping.metric=auc");
  CHECK(unranked.code == 2);
  CHECK_THAT(unranked.err, Contains("/train/early_stopping/protocol: \"full\" ranks") &&
                               Contains("leave the protocol at \"sampled\""));
}

TEST_CASE("cli: evaluate under a multi-process launcher is refused, a world of one trains",
          "[cli][dist]") {
  TempDir dir;
  REQUIRE(run_cli("--log-level warn generate --out '" + dir.file("data") +
                  "' --users 20 --items 30 --train 200 --valid 50 --test 50 --seed 3")
              .code == 0);
  const std::string args = "--log-level warn train --set data.train='" + dir.file("data") +
                           "/train.tsv' --set train.epochs=1 --set train.device=cpu --run-dir '";
  const auto bad = run_cli_env("SLURM_PROCID=0", args + dir.file("run_bad") + "'");
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Contains("SLURM_PROCID is set but SLURM_NTASKS is not"));
  const auto one = run_cli_env("RANK=0 WORLD_SIZE=1", args + dir.file("run1") + "'");
  INFO(one.err);
  CHECK(one.code == 0);
  const auto several =
      run_cli_env("RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500",
                  "--log-level warn evaluate --checkpoint '" + dir.file("run1") + "' --data '" +
                      dir.file("data") + "/test.tsv'");
  CHECK(several.code == 2);
  CHECK_THAT(several.err,
             Contains("environment (env:// (torchrun)): this process is rank 0 of 2") &&
                 Contains("attnrec evaluate runs in one process"));
}
