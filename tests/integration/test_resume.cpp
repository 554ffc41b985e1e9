// Checkpoints that can be trusted: exact resume, interruption, faults. These run the real
// binary where signals or processes are involved.
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <random>
#include <thread>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/dataset.hpp"
#include "attnrec/io/checkpoint.hpp"
#include "attnrec/model/factory.hpp"
#include "attnrec/train/trainer.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/hash.hpp"
#include "attnrec/util/run_lock.hpp"
#include "support.hpp"

using namespace attnrec::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

/// Generated data and a config with frequent checkpoints, validation every 4 steps and dropout
/// (so the generator state matters); 10 steps per epoch, 3 epochs.
struct Workspace {
  TempDir dir;
  std::string data = dir.file("data");
  std::string config = dir.file("c.json");
  explicit Workspace(int train_samples = 600) {
    run_cli("--log-level warn generate --out '" + data +
            "' --users 40 --items 60 --categories 6 "
            "--train " +
            std::to_string(train_samples) + " --valid 200 --test 200 --seed 5");
    write_text(config, R"({"data": {"train": ")" + data + R"(/train.tsv",
        "valid": ")" + data +
                           R"(/valid.tsv", "test": ")" + data + R"(/test.tsv"},
        "model": {"embedding": {"dim": 8}, "encoder": {"hidden": 8},
                  "head": {"hidden": [8], "dropout": 0.2}},
        "train": {"epochs": 3, "batch_size": 64, "threads": 1, "device": "cpu",
                  "validate_every_steps": 4},
        "checkpoint": {"every_steps": 3, "keep_last": 2}})");
  }
  CliResult train(const std::string& run, const std::string& extra = "") const {
    return run_cli("--log-level warn train --config '" + config + "' --run-dir '" + run + "' " +
                   extra);
  }
};

CliResult resume(const std::string& run, const std::string& extra = "") {
  return run_cli("--log-level warn train --resume '" + run + "' " + extra);
}

nlohmann::json inspect(const std::string& path) {
  const auto r = run_cli("inspect --json '" + path + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  return nlohmann::json::parse(r.out);
}

/// metrics.jsonl without wall-clock fields.
std::vector<nlohmann::json> metric_rows(const std::string& run) {
  std::vector<nlohmann::json> rows;
  std::istringstream lines(read_text(run + "/metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    auto row = nlohmann::json::parse(line);
    for (const char* k :
         {"eval_seconds", "train_seconds", "train_samples_per_second", "checkpoint"}) {
      row.erase(k);
    }
    rows.push_back(row);
  }
  return rows;
}

void check_same_run(const std::string& a, const std::string& b) {
  const auto fa = inspect(a + "/checkpoints/final.pt");
  const auto fb = inspect(b + "/checkpoints/final.pt");
  CHECK(fa["weights_sha256"] == fb["weights_sha256"]);
  CHECK(fa["optimizer_sha256"] == fb["optimizer_sha256"]);
  CHECK(fa["train_state"]["global_step"] == fb["train_state"]["global_step"]);
  CHECK(fa["train_state"]["early_stopping"] == fb["train_state"]["early_stopping"]);
  CHECK(metric_rows(a) == metric_rows(b));
}

}  // namespace

TEST_CASE("resume is bit-identical to an uninterrupted run at any interruption point", "[resume]") {
  Workspace w;
  const auto straight = w.dir.file("straight");
  REQUIRE(w.train(straight).code == 0);
  REQUIRE(metric_rows(straight).size() ==
          3 * 3 + 1);  // 2 step + 1 epoch validations per epoch, test
  // 3: a step checkpoint; 4: right after a validation; 7: mid-epoch, no periodic checkpoint;
  // 10: last step of epoch 1, before its validation; 20: end of epoch 2.
  for (const int stop : {3, 4, 7, 10, 20}) {
    DYNAMIC_SECTION("interrupted after step " << stop) {
      const auto run = w.dir.file("stop" + std::to_string(stop));
      const auto first = w.train(run, "--stop-after-steps " + std::to_string(stop));
      INFO(first.err);
      REQUIRE(first.code == 0);
      CHECK(inspect(run)["train_state"].is_object());
      const auto second = resume(run);
      INFO(second.err);
      REQUIRE(second.code == 0);
      check_same_run(straight, run);
    }
  }
  SECTION("interrupted twice, resuming from an explicit checkpoint file") {
    const auto run = w.dir.file("twice");
    REQUIRE(w.train(run, "--stop-after-steps 5").code == 0);
    REQUIRE(resume(run, "--stop-after-steps 16").code == 0);
    const auto latest = read_text(run + "/checkpoints/latest");
    REQUIRE(resume(run + "/checkpoints/" + latest.substr(0, latest.find('\n'))).code == 0);
    check_same_run(straight, run);
  }
}

TEST_CASE("resume: allowed overrides continue, architecture changes are refused", "[resume]") {
  Workspace w;
  const auto run = w.dir.file("run");
  REQUIRE(w.train(run, "--stop-after-steps 5").code == 0);
  const auto refused = resume(run, "--set model.encoder.hidden=9 --set train.lr=0.5");
  CHECK(refused.code == 2);
  CHECK_THAT(refused.err, Contains("/model/encoder/hidden (8 -> 9)"));
  CHECK_THAT(refused.err, Contains("/train/lr (0.001 -> 0.5)"));
  const auto conflicting = run_cli("train --resume '" + run + "' --config '" + w.config + "'");
  CHECK(conflicting.code == 2);
  const auto longer = run_cli("train --resume '" + run + "' --set train.epochs=4");
  INFO(longer.err);
  REQUIRE(longer.code == 0);
  CHECK_THAT(longer.err, Contains("resume override: /train/epochs (3 -> 4)"));
  CHECK(inspect(run + "/checkpoints/final.pt")["train_state"]["global_step"] == 40);
  // A finished run can be extended the same way.
  REQUIRE(resume(run, "--set train.epochs=5").code == 0);
  CHECK(inspect(run + "/checkpoints/final.pt")["train_state"]["global_step"] == 50);
  const auto none = resume(w.dir.file("nothing-here"));
  CHECK(none.code == 2);
}

TEST_CASE("inspect and checkpoint verification", "[resume]") {
  Workspace w;
  const auto a = w.dir.file("a"), b = w.dir.file("b");
  REQUIRE(w.train(a).code == 0);
  REQUIRE(w.train(b).code == 0);
  const auto ja = inspect(a + "/checkpoints/final.pt");
  CHECK(ja["weights_sha256"].get<std::string>().size() == 64);
  CHECK(ja["weights_sha256"] == inspect(b + "/checkpoints/final.pt")["weights_sha256"]);
  CHECK(ja["format_version"] == 1);
  CHECK(ja["kind"] == "final");
  CHECK(ja["config"]["model"]["embedding"]["dim"] == 8);
  const auto text = run_cli("inspect '" + a + "'");
  CHECK(text.code == 0);
  CHECK_THAT(text.out, Contains("weights_sha256"));

  const std::string final_pt = a + "/checkpoints/final.pt";
  const std::string bytes = read_text(final_pt);
  // A flipped byte in the payload.
  std::string flipped = bytes;
  flipped[flipped.size() - 100] ^= 0x20;
  write_text(w.dir.file("flipped.pt"), flipped);
  auto r = run_cli("inspect '" + w.dir.file("flipped.pt") + "'");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("corrupted checkpoint"));
  // A truncated file.
  write_text(w.dir.file("truncated.pt"), bytes.substr(0, bytes.size() / 2));
  r = run_cli("evaluate --checkpoint '" + w.dir.file("truncated.pt") + "' --data '" + w.data +
              "/test.tsv'");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("truncated checkpoint"));
  // A newer format.
  std::string newer = bytes;
  newer.replace(newer.find("ATTNREC-CHECKPOINT 1"), 20, "ATTNREC-CHECKPOINT 2");
  write_text(w.dir.file("newer.pt"), newer);
  r = run_cli("inspect '" + w.dir.file("newer.pt") + "'");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("checkpoint format 2 is newer than this attnrec's format 1"));
}

TEST_CASE("SIGINT finishes the step and checkpoints - exit 130 - resume completes exactly",
          "[resume][signals]") {
  Workspace w(20000);  // ~313 steps per epoch: long enough to interrupt
  write_text(w.config, R"({"data": {"train": ")" + w.data + R"(/train.tsv"},
      "model": {"embedding": {"dim": 8}, "encoder": {"hidden": 8}, "head": {"hidden": [8]}},
      "train": {"epochs": 1, "batch_size": 64, "threads": 1, "device": "cpu"}})");
  const auto straight = w.dir.file("straight");
  REQUIRE(w.train(straight).code == 0);
  const auto run = w.dir.file("run");
  const pid_t pid = spawn_cli({"train", "--config", w.config, "--run-dir", run}, w.dir.file("out"),
                              w.dir.file("err"));
  // Wait until training has started (the log says so), then interrupt.
  for (int i = 0;
       i < 500 && read_text(run + "/train.log").find("training 20000") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(pid, SIGINT);
  CHECK(wait_cli(pid) == 130);
  CHECK_THAT(read_text(w.dir.file("err")), Contains("resume with: attnrec train --resume"));
  REQUIRE(fs::exists(run + "/checkpoints/latest"));
  CHECK_FALSE(fs::exists(run + "/checkpoints/final.pt"));
  const auto r = resume(run);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(inspect(run + "/checkpoints/final.pt")["weights_sha256"] ==
        inspect(straight + "/checkpoints/final.pt")["weights_sha256"]);
}

TEST_CASE("SIGTERM exits 143 and a second signal ends the process without harming checkpoints",
          "[resume][signals]") {
  Workspace w(20000);
  write_text(w.config, R"({"data": {"train": ")" + w.data + R"(/train.tsv"},
      "model": {"embedding": {"dim": 8}, "encoder": {"hidden": 8}, "head": {"hidden": [8]}},
      "train": {"epochs": 1, "batch_size": 64, "threads": 1, "device": "cpu"},
      "checkpoint": {"every_steps": 20}})");
  auto start_and_wait = [&](const std::string& run) {
    const pid_t pid = spawn_cli({"train", "--config", w.config, "--run-dir", run},
                                w.dir.file("out"), w.dir.file("err"));
    for (int i = 0; i < 500 && !fs::exists(run + "/checkpoints/latest"); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pid;
  };
  const auto term = w.dir.file("term");
  pid_t pid = start_and_wait(term);
  ::kill(pid, SIGTERM);
  CHECK(wait_cli(pid) == 143);
  CHECK_THAT(read_text(w.dir.file("err")), Contains("SIGTERM received"));

  const auto twice = w.dir.file("twice");
  pid = start_and_wait(twice);
  ::kill(pid, SIGINT);
  ::kill(pid, SIGINT);
  CHECK(wait_cli(pid) == 130);  // by our handler or by the default action of the second signal
  // Whatever happened, the latest complete checkpoint verifies and resumes.
  inspect(twice);
  const auto r = resume(twice);
  INFO(r.err);
  CHECK(r.code == 0);
}

TEST_CASE("SIGKILL at random moments: the latest checkpoint always resumes to the same model",
          "[resume][kill]") {
  const bool extended = std::getenv("ATTNREC_EXTENDED_TESTS") != nullptr;
  const int trials = extended ? 20 : 3;
  Workspace w(3000);
  write_text(w.config,
             R"({"data": {"train": ")" + w.data + R"(/train.tsv", "valid": ")" + w.data +
                 R"(/valid.tsv"}, "model": {"embedding": {"dim": 8}, "encoder": {"hidden": 8},
      "head": {"hidden": [8], "dropout": 0.2}},
      "train": {"epochs": 2, "batch_size": 32, "threads": 1, "device": "cpu"},
      "checkpoint": {"every_steps": 2, "keep_last": 2}})");
  const auto straight = w.dir.file("straight");
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(w.train(straight).code == 0);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto expected = inspect(straight + "/checkpoints/final.pt")["weights_sha256"];
  std::mt19937 rng(12345);
  for (int trial = 0; trial < trials; ++trial) {
    INFO("trial " << trial);
    const auto run = w.dir.file("kill" + std::to_string(trial));
    const double delay = std::uniform_real_distribution<double>(0.2, 0.95)(rng) * seconds;
    const pid_t pid =
        spawn_cli({"--log-level", "warn", "train", "--config", w.config, "--run-dir", run},
                  "/dev/null", "/dev/null");
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    ::kill(pid, SIGKILL);
    wait_cli(pid);
    // Resume from whatever was complete; a run killed before its first checkpoint restarts.
    CliResult r =
        fs::exists(run + "/checkpoints/latest") ? resume(run) : w.train(run, "--overwrite");
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(inspect(run + "/checkpoints/final.pt")["weights_sha256"] == expected);
    CHECK(metric_rows(run) == metric_rows(straight));
  }
}

TEST_CASE("a full disk while saving: clear error, earlier checkpoints intact", "[resume][faults]") {
  Workspace w;
  const auto straight = w.dir.file("straight"), run = w.dir.file("run");
  REQUIRE(w.train(straight).code == 0);
  REQUIRE(w.train(run, "--stop-after-steps 5").code == 0);
  const auto latest_before = read_text(run + "/checkpoints/latest");
  // RLIMIT_FSIZE makes writes past 16 KiB fail with EFBIG (SIGXFSZ ignored), like a full disk.
  const auto full = std::system(("bash -c \"trap '' XFSZ; ulimit -f 16; '" + binary_path() +
                                 "' train --resume '" + run + "' 2>'" + w.dir.file("err") + "'\"")
                                    .c_str());
  CHECK(WEXITSTATUS(full) == 1);
  CHECK_THAT(read_text(w.dir.file("err")), Contains("cannot write checkpoint"));
  CHECK(read_text(run + "/checkpoints/latest") == latest_before);
  const auto r = resume(run);
  INFO(r.err);
  REQUIRE(r.code == 0);
  check_same_run(straight, run);
  const auto unwritable = w.train("/dev/null/run");
  CHECK(unwritable.code == 1);
  CHECK_THAT(unwritable.err, Contains("cannot create run directory"));
}

TEST_CASE("a training file edited in place between a run and its resume is refused",
          "[resume][faults]") {
  // Found by scripts/faults.sh: a label flipped or two lines swapped keep the vocabulary, and
  // the resume used to continue silently on other data. The checkpoint records the SHA-256 of
  // the training samples; every such edit is an exit-2 error that changes nothing.
  Workspace w;
  const auto straight = w.dir.file("straight"), run = w.dir.file("run");
  REQUIRE(w.train(straight).code == 0);
  REQUIRE(w.train(run, "--stop-after-steps 5").code == 0);
  std::string latest = read_text(run + "/checkpoints/latest");
  latest.erase(latest.find_last_not_of("\n") + 1);
  const auto meta = inspect(run + "/checkpoints/" + latest);
  REQUIRE(meta["train_data_sha256"].get<std::string>().size() == 64);
  const std::string train = w.data + "/train.tsv";
  const std::string original = read_text(train);
  const auto before = tree_hashes(run);
  // Line 2 (the first sample) with its label flipped; lines 2 and 3 swapped.
  const auto first = original.find('\n') + 1, second = original.find('\n', first) + 1,
             third = original.find('\n', second) + 1;
  std::string flipped = original;
  flipped[first] = original[first] == '1' ? '0' : '1';
  const std::string swapped = original.substr(0, first) + original.substr(second, third - second) +
                              original.substr(first, second - first) + original.substr(third);
  for (const auto& [what, text] :
       {std::pair{"a flipped label", flipped}, {"swapped lines", swapped}}) {
    INFO(what);
    REQUIRE(text != original);
    write_text(train, text);
    const auto r = resume(run);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains(train + ": the training data changed since"));
    CHECK_THAT(r.err, Contains("the SHA-256 of its samples differs"));
    CHECK(tree_hashes(run) == before);
  }
  write_text(train, original);
  const auto r = resume(run);
  INFO(r.err);
  REQUIRE(r.code == 0);
  check_same_run(straight, run);
}

TEST_CASE("two trainings in one run directory: the second is refused", "[resume][faults]") {
  Workspace w;
  const auto run = w.dir.file("run");
  REQUIRE(w.train(run, "--stop-after-steps 3").code == 0);
  {
    attnrec::RunLock held(run);  // as if another process were training there
    const auto r = resume(run);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains("another attnrec process is training in this run directory (pid " +
                               std::to_string(::getpid())));
    const auto o = w.train(run, "--overwrite");
    CHECK(o.code == 2);
    CHECK(fs::exists(run + "/checkpoints/latest"));  // --overwrite did not delete a live run
  }
  CHECK(resume(run).code == 0);
}

TEST_CASE("non-finite loss: error before the update, or skip and count", "[resume][faults]") {
  using namespace attnrec;
  Workspace w;
  for (const std::string policy : {"error", "skip"}) {
    INFO(policy);
    Config c = default_config();
    apply_overrides(c,
                    {"data.train=" + w.data + "/train.tsv", "data.valid=" + w.data + "/valid.tsv",
                     "model.embedding.dim=8", "model.encoder.hidden=8", "train.epochs=1",
                     "train.on_nonfinite=" + policy});
    ReaderOptions reader = reader_options(c.data);
    const auto train = read_training_file(c.data.train, reader, {});
    const auto valid = read_sample_file(c.data.valid, reader, train.items, train.users);
    RunDir run{w.dir.file("nan-" + policy)};
    fs::create_directories(run.root);
    train.items.save(run.items_vocab());
    train.users.save(run.users_vocab());
    auto model = build_recommender(c, train.items.size(), train.users.size());
    {
      torch::NoGradGuard guard;
      model->named_parameters()["item_embedding.weight"].fill_(std::nan(""));
    }
    Trainer trainer(c, train, &valid, run, torch::kCPU);
    if (policy == "error") {
      CHECK_THROWS_WITH(trainer.fit(model), Contains("non-finite training loss at global step 1"));
      CHECK_FALSE(fs::exists(run.best()));
      CHECK_FALSE(fs::exists(run.latest_pointer()));
    } else {
      const auto state = trainer.fit(model);
      CHECK(state.skipped_nonfinite == 3);  // 600 samples / batch 256
      CHECK_FALSE(fs::exists(run.best()));  // a NaN score never becomes the best model
    }
  }
}

TEST_CASE("resume with lazy_adam (sparse embedding rows) is bit-identical", "[resume][optim]") {
  Workspace w;
  const auto straight = w.dir.file("lazy");
  REQUIRE(w.train(straight, "--set train.optimizer=lazy_adam").code == 0);
  const auto run = w.dir.file("lazy_stop");
  REQUIRE(w.train(run, "--set train.optimizer=lazy_adam --stop-after-steps 7").code == 0);
  const auto second = resume(run);
  INFO(second.err);
  REQUIRE(second.code == 0);
  check_same_run(straight, run);
  // And it is a different optimizer: dense Adam ends elsewhere.
  const auto dense = w.dir.file("dense");
  REQUIRE(w.train(dense).code == 0);
  CHECK(inspect(dense + "/checkpoints/final.pt")["weights_sha256"] !=
        inspect(straight + "/checkpoints/final.pt")["weights_sha256"]);
}

namespace {

/// Trains `flags` to the end in run `name`; returns its directory.
std::string train_straight(const Workspace& w, const std::string& name, const std::string& flags) {
  const auto run = w.dir.file(name);
  const auto r = w.train(run, flags);
  INFO(r.err);
  REQUIRE(r.code == 0);
  return run;
}

/// Trains `flags` again, stopped after `stop` steps, resumes it, and checks that it ends where
/// the uninterrupted run `straight` ended.
void check_stop_and_resume(const Workspace& w, const std::string& straight,
                           const std::string& flags, int stop) {
  const auto run = straight + "_stop" + std::to_string(stop);
  REQUIRE(w.train(run, flags + "--stop-after-steps " + std::to_string(stop)).code == 0);
  const auto second = resume(run);
  INFO(second.err);
  REQUIRE(second.code == 0);
  check_same_run(straight, run);
}

}  // namespace

TEST_CASE("resume with drawn negatives is bit-identical, mid-epoch too", "[resume][negatives]") {
  // Negatives drawn by the loader's thread, every regulariser of the recipe, shuffling: the
  // draw depends only on (seed, epoch, sample), so a resumed run draws what the straight one
  // drew. With ~300 positives an epoch is 5 steps: 7 stops in the middle of epoch 2.
  Workspace w;
  const std::string recipe =
      "--set train.negatives.per_positive=3 --set train.loss=bpr --set data.shuffle=true "
      "--set model.embedding.dropout=0.1 --set model.head.item_bias=true "
      "--set train.optimizer=lazy_adam --set train.weight_decay=0.001 ";
  const auto straight = train_straight(w, "neg", recipe);
  for (const int stop : {2, 7}) {
    DYNAMIC_SECTION("interrupted after step " << stop) {
      check_stop_and_resume(w, straight, recipe, stop);
    }
  }
  SECTION("the negatives are used: one instead of three per positive ends elsewhere") {
    const auto other = w.dir.file("neg_k1");
    REQUIRE(w.train(other, recipe + "--set train.negatives.per_positive=1").code == 0);
    CHECK(inspect(other + "/checkpoints/final.pt")["weights_sha256"] !=
          inspect(straight + "/checkpoints/final.pt")["weights_sha256"]);
  }
}

TEST_CASE("resume with next-item training (a transformer over every position) is bit-identical",
          "[resume][negatives][transformer]") {
  // Every position draws its own negatives from the (seed, epoch, sample) stream, so a resumed
  // run trains on exactly what the straight one did.
  Workspace w;
  const std::string sasrec =
      "--set train.negatives.per_positive=2 --set train.next_item=true --set data.shuffle=true "
      "--set model.encoder.type=transformer --set model.encoder.layers=1 "
      "--set model.encoder.heads=2 --set model.encoder.dropout=0.1 "
      "--set model.attention.type=last --set model.attention.query=self "
      "--set model.head.type=dot --set model.head.item_bias=true ";
  const auto straight = train_straight(w, "next", sasrec);
  check_stop_and_resume(w, straight, sasrec, 5);
  // Without next-item training the same model ends elsewhere: the flag changes what is trained.
  const auto other = w.dir.file("last_only");
  const std::string last_only = sasrec.substr(0, sasrec.find("--set train.next_item")) +
                                sasrec.substr(sasrec.find("--set data.shuffle"));
  REQUIRE(w.train(other, last_only).code == 0);
  CHECK(inspect(other + "/checkpoints/final.pt")["weights_sha256"] !=
        inspect(straight + "/checkpoints/final.pt")["weights_sha256"]);
}

TEST_CASE("resume with a shared pool, gBCE and the full softmax is bit-identical mid-epoch",
          "[resume][negatives][pool][softmax]") {
  // A pool depends only on (seed, epoch, batch) and the full softmax draws nothing, so a
  // resumed run trains on exactly what the straight one did, whatever the loss.
  Workspace w;
  const std::string factorised =
      "--set train.next_item=true --set data.shuffle=true "
      "--set model.encoder.type=transformer --set model.encoder.layers=1 "
      "--set model.encoder.heads=2 --set model.encoder.dropout=0.1 "
      "--set model.attention.type=last --set model.attention.query=self "
      "--set model.head.type=dot --set model.head.item_bias=true ";
  const std::vector<std::pair<std::string, std::string>> losses = {
      {"pool_softmax",
       "--set train.loss=sampled_softmax --set train.negatives.shared_pool=64 "
       "--set train.negatives.sampling=popularity "},
      {"pool_gbce", "--set train.loss=gbce --set train.negatives.shared_pool=32 "},
      {"full_softmax", "--set train.loss=softmax --set train.softmax_block=7 "},
  };
  for (const auto& [name, flags] : losses) {
    DYNAMIC_SECTION(name) {
      const auto straight = train_straight(w, name, factorised + flags);
      check_stop_and_resume(w, straight, factorised + flags, 5);
    }
  }
}

TEST_CASE("faults.sh: its arguments, and one trial of four scenarios ends without a failure",
          "[resume][faults][scripts]") {
  TempDir dir;
  const std::string script = "ATTNREC_BIN='" + binary_path() + "' bash '" +
                             source_path("scripts/faults.sh") + "' --work '" + dir.file("w") + "'";
  auto shell = [&](const std::string& args) {
    const auto out = dir.file("out");
    const int status = std::system((script + " " + args + " >'" + out + "' 2>&1").c_str());
    return CliResult{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                     read_text(out), ""};
  };
  auto r = shell("--trials 0");
  CHECK(r.code == 2);
  CHECK_THAT(r.out, Contains("--trials: expected 1 to 9999"));
  r = shell("sigkil");
  CHECK(r.code == 2);
  CHECK_THAT(r.out, Contains("unknown scenario 'sigkil'"));
  CHECK(shell("--frobnicate").code == 2);

  r = shell("--trials 1 sigterm bitflip data two-trainers");
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Contains("no failures"));
  // Each row: | scenario | trials | clear errors | corrupted | resumes matched | failures |
  std::map<std::string, std::vector<std::string>> rows;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("| ", 0) != 0) continue;
    std::vector<std::string> cells;
    std::istringstream parts(line.substr(1));
    for (std::string cell; std::getline(parts, cell, '|');) {
      cell.erase(0, cell.find_first_not_of(' '));
      cell.erase(cell.find_last_not_of(' ') + 1);
      cells.push_back(cell);
    }
    if (cells.size() == 6) rows[cells[0]] = cells;
  }
  REQUIRE(rows.count("bitflip"));
  CHECK(rows["bitflip"] == std::vector<std::string>{"bitflip", "1", "1", "0", "1", "0"});
  CHECK(rows["data"] == std::vector<std::string>{"data", "4", "4", "0", "4", "0"});
  CHECK(rows["two-trainers"] == std::vector<std::string>{"two-trainers", "1", "1", "0", "1", "0"});
  REQUIRE(rows.count("sigterm"));
  CHECK(rows["sigterm"][4] == "1");
  CHECK(rows["sigterm"][5] == "0");
  CHECK_FALSE(fs::exists(dir.file("w")));  // removed without --keep
}
