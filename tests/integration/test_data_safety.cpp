// Data safety: no command may damage what the user already has. Every case runs the real
// binary and compares the SHA-256 of every file of the run directory and of every input before
// and after a failing command.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <thread>

#include "attnrec/io/checkpoint.hpp"
#include "attnrec/tools/synthetic.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/hash.hpp"
#include "support.hpp"

using namespace attnrec::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

// clang spells "built with AddressSanitizer" as a feature test, GCC as a macro.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ATTNREC_ASAN 1
#endif
#endif

namespace {

/// The files of a few trees, captured now and compared later.
struct Snapshot {
  std::vector<std::string> dirs;
  std::vector<std::map<std::string, std::string>> hashes;
  explicit Snapshot(std::vector<std::string> d) : dirs(std::move(d)) {
    for (const auto& dir : dirs) hashes.push_back(tree_hashes(dir));
  }
  void check_unchanged() const {
    for (std::size_t i = 0; i < dirs.size(); ++i) {
      INFO("tree " << dirs[i]);
      CHECK(tree_hashes(dirs[i]) == hashes[i]);
    }
  }
};

/// Env for CLI runs: OMP_WAIT_POLICY set so that the binary does not re-execute itself.
CliResult cli(const std::string& args) { return run_cli_env("OMP_WAIT_POLICY=PASSIVE", args); }

/// Copies a run directory (to damage a copy, never the shared one).
std::string copy_run(const std::string& from, const std::string& to) {
  fs::copy(from, to, fs::copy_options::recursive);
  return to;
}

/// Rewrites a checkpoint's meta JSON with `change` (and its LibTorch payload with
/// `change_payload`) and recomputes its size line and checksum, as a tool that knows the format
/// would: only attnrec's own checks can then refuse it.
void forge_checkpoint_text(
    const std::string& path, const std::function<std::string(const std::string&)>& change,
    const std::function<std::string(const std::string&)>& change_payload = nullptr) {
  const std::string bytes = read_text(path);
  const auto l1 = bytes.find('\n'), l2 = bytes.find('\n', l1 + 1);
  std::istringstream sizes(bytes.substr(l1 + 1, l2 - l1 - 1));
  std::size_t meta_bytes = 0;
  sizes >> meta_bytes;
  std::string payload = bytes.substr(l2 + 1 + meta_bytes);
  if (change_payload) payload = change_payload(payload);
  const std::string text = change(bytes.substr(l2 + 1, meta_bytes));
  attnrec::Sha256 h;
  h.update(text);
  h.update(payload);
  write_text(path, bytes.substr(0, l1 + 1) + std::to_string(text.size()) + " " +
                       std::to_string(payload.size()) + " " + h.hex() + "\n" + text + payload);
}

/// forge_checkpoint_text() on the parsed meta JSON.
void forge_checkpoint(const std::string& path, const std::function<void(nlohmann::json&)>& change) {
  forge_checkpoint_text(path, [&](const std::string& text) {
    auto meta = nlohmann::json::parse(text);
    change(meta);
    return meta.dump();
  });
}

/// Generated data, a trained run, and a preprocessed log, shared by the tests below.
struct World {
  TempDir dir;
  std::string data = dir.file("data");
  std::string run = dir.file("run");
  std::string prep = dir.file("prep");
  std::string log = dir.file("log.dat");
  std::string config = dir.file("c.json");
  int train_code = -1;
  World() {
    cli("--log-level warn generate --out '" + data +
        "' --users 40 --items 60 --categories 6 "
        "--train 600 --valid 200 --test 200 --seed 5");
    write_text(config, R"({"data": {"train": ")" + data + R"(/train.tsv",
        "valid": ")" + data +
                           R"(/valid.tsv", "test": ")" + data + R"(/test.tsv"},
        "model": {"embedding": {"dim": 8}, "encoder": {"hidden": 8}, "head": {"hidden": [8]}},
        "train": {"epochs": 2, "batch_size": 64, "threads": 1, "device": "cpu"}})");
    train_code =
        cli("--log-level warn train --config '" + config + "' --run-dir '" + run + "'").code;
    cli("--log-level warn generate --log '" + log +
        "' --log-users 60 --log-items 200 "
        "--max-events 30 --seed 3");
    cli("--log-level warn preprocess -i '" + log + "' -o '" + prep + "' --min-rating 1");
  }
  std::vector<std::string> run_files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(run)) {
      if (e.is_regular_file()) out.push_back(e.path().string());
    }
    return out;
  }
};

World& world() {
  static World w;
  return w;
}

void expect_refusal(const CliResult& r, const std::string& message) {
  INFO(r.err);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains(message));
  CHECK_THAT(r.err, !Contains("internal error"));
}

}  // namespace

TEST_CASE("a failing resume leaves every file of the run directory as it was", "[safety]") {
  auto& w = world();
  REQUIRE(w.train_code == 0);
  TempDir scratch;
  write_text(scratch.file("bad.tsv"), "label\tuser\titem\thistory\n1\tu1\n");
  const auto bad = scratch.file("bad.tsv");

  SECTION("a bad override file: the config is not rewritten") {
    const auto run = copy_run(w.run, scratch.file("run"));
    const Snapshot before({run, w.data});
    const auto r =
        cli("train --resume '" + run + "' --set train.epochs=3 --set data.test='" + bad + "'");
    expect_refusal(r, "bad.tsv:2:");
    before.check_unchanged();
  }
  SECTION("an override that is not allowed, or fewer epochs than done") {
    const auto run = copy_run(w.run, scratch.file("run"));
    const Snapshot before({run});
    expect_refusal(cli("train --resume '" + run + "' --set model.encoder.hidden=16"),
                   "cannot change in a resumed run");
    expect_refusal(cli("train --resume '" + run +
                       "/checkpoints/step-000000020.pt' "
                       "--set train.epochs=1 --set checkpoint.keep_last=1"),
                   "epochs the checkpoint");
    before.check_unchanged();
  }
  SECTION("forged checkpoints (checksum recomputed): no checkpoint is pruned or written") {
    const auto run = copy_run(w.run, scratch.file("run"));
    const auto forged = run + "/checkpoints/step-000000010.pt";
    const auto pt = [&](const std::function<void(nlohmann::json&)>& change) {
      fs::copy_file(w.run + "/checkpoints/step-000000010.pt", forged,
                    fs::copy_options::overwrite_existing);
      forge_checkpoint(forged, change);
      return "train --resume '" + forged + "' --set train.epochs=4 --set checkpoint.keep_last=1";
    };
    std::string cmd = pt([](auto& m) { m["train_state"]["global_step"] = -5; });
    Snapshot before({run});
    expect_refusal(cli(cmd), "global_step: negative (-5)");
    cmd = pt([](auto& m) {
      m["train_state"]["step_in_epoch"] = 500;
      m["train_state"]["global_step"] = 500;
    });
    before = Snapshot({run});
    expect_refusal(cli(cmd), "step_in_epoch 500 is beyond the 10 batches");
    before.check_unchanged();
    cmd = pt([](auto& m) { m["config"]["model"]["encoder"]["hidden"] = 16; });
    before = Snapshot({run});
    expect_refusal(cli(cmd), "the stored config builds shape");
    before.check_unchanged();
    cmd = pt([](auto& m) { m["train_state"]["metrics_rows"] = 40; });
    before = Snapshot({run});
    expect_refusal(cli(cmd), "the checkpoint follows 40 rows");
    before.check_unchanged();
    cmd = pt([](auto& m) { m["train_state"]["epoch"] = "one"; });
    before = Snapshot({run});
    expect_refusal(cli(cmd), "malformed checkpoint header");
    before.check_unchanged();
  }
}

TEST_CASE("train --overwrite deletes only what a run wrote, and only after every check",
          "[safety]") {
  auto& w = world();
  REQUIRE(w.train_code == 0);
  TempDir scratch;
  SECTION("bad data: the earlier run survives a failed --overwrite") {
    const auto run = copy_run(w.run, scratch.file("run"));
    write_text(scratch.file("bad.tsv"), "label\tuser\titem\thistory\n1\tu1\n");
    const Snapshot before({run});
    expect_refusal(cli("train --config '" + w.config + "' --run-dir '" + run +
                       "' --overwrite --set data.valid='" + scratch.file("bad.tsv") + "'"),
                   "bad.tsv:2:");
    before.check_unchanged();
  }
  SECTION("a training file inside the run directory is kept and used") {
    const auto run = copy_run(w.run, scratch.file("run"));
    fs::copy_file(w.data + "/train.tsv", run + "/train.tsv");
    write_text(run + "/notes.txt", "mine");
    const auto r = cli("--log-level warn train --config '" + w.config + "' --run-dir '" + run +
                       "' --overwrite --set data.train='" + run + "/train.tsv'");
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK(read_text(run + "/notes.txt") == "mine");
    CHECK(attnrec::sha256_file(run + "/train.tsv") == attnrec::sha256_file(w.data + "/train.tsv"));
    CHECK_THAT(r.err, Contains("kept 2 file(s) attnrec did not write: notes.txt, train.tsv"));
  }
  SECTION("an input that is a file the run owns is refused") {
    const auto run = copy_run(w.run, scratch.file("run"));
    fs::copy_file(w.data + "/train.tsv", run + "/summary.json",
                  fs::copy_options::overwrite_existing);
    const Snapshot before({run});
    expect_refusal(cli("train --config '" + w.config + "' --run-dir '" + run +
                       "' --overwrite --set data.train='" + run + "/summary.json'"),
                   "which --overwrite would delete");
    before.check_unchanged();
  }
}

TEST_CASE("every output flag refuses each input and each file of a run directory", "[safety]") {
  auto& w = world();
  REQUIRE(w.train_code == 0);
  const std::string test = w.data + "/test.tsv";
  const Snapshot before({w.run, w.data, w.prep});
  const std::string eval = "evaluate --checkpoint '" + w.run + "' --data '" + test + "' ";
  std::vector<std::pair<std::string, std::string>> cases;  // command, expected message
  for (const auto& file : w.run_files()) {
    for (const char* flag : {"--output", "--predictions"}) {
      cases.emplace_back(eval + flag + " '" + file + "'", "nothing was written");
    }
    cases.emplace_back(
        "predict --checkpoint '" + w.run + "' --data '" + test + "' --output '" + file + "'",
        "nothing was written");
    cases.emplace_back("check-data --dir '" + w.prep + "' --output '" + file + "'",
                       "a file attnrec manages");
  }
  for (const char* file : {"config.json", "items.vocab", "checkpoints/best.pt"}) {
    cases.emplace_back("generate --log '" + w.run + "/" + file + "'", "a file attnrec manages");
  }
  for (const char* flag : {"--output", "--predictions"}) {
    const std::string f = flag;
    cases.emplace_back(eval + f + " '" + test + "'", "is the input --data");
    cases.emplace_back(eval + "--ranking sampled --candidates '" + w.prep +
                           "/test_candidates.tsv' " + f + " '" + w.prep + "/test_candidates.tsv'",
                       "is the input --candidates");
    cases.emplace_back(eval + "--ranking full --interactions '" + w.prep + "/interactions.tsv' " +
                           f + " '" + w.prep + "/interactions.tsv'",
                       "is the input --interactions");
    cases.emplace_back(
        eval + "--protocol '" + w.prep + "/protocol.json' " + f + " '" + w.prep + "/protocol.json'",
        "is the input --protocol");
    cases.emplace_back(
        eval + "--oracle '" + w.data + "/oracle.json' " + f + " '" + w.data + "/oracle.json'",
        "is the input --oracle");
    cases.emplace_back(eval + "--baseline popularity " + f + " '" + w.data + "/train.tsv'",
                       "is the input --train");
  }
  cases.emplace_back(
      eval + "--output '" + w.dir.file("x.json") + "' --predictions '" + w.dir.file("x.json") + "'",
      "is also the path of --output");
  cases.emplace_back(
      "predict --checkpoint '" + w.run + "' --data '" + test + "' --output '" + test + "'",
      "is the input --data");
  for (const char* name :
       {"train.tsv", "valid.tsv", "test.tsv", "interactions.tsv", "test_candidates.tsv"}) {
    cases.emplace_back("check-data --dir '" + w.prep + "' --output '" + w.prep + "/" + name + "'",
                       "is the input");
  }
  cases.emplace_back("check-data --dir '" + w.prep + "' --vocab '" + w.run +
                         "/items.vocab' --output '" + w.run + "/items.vocab'",
                     "is the input --vocab");
  cases.emplace_back(
      "preprocess -i '" + w.prep + "/interactions.tsv' --format movielens_tsv -o '" + w.prep + "'",
      "is the input --input");
  cases.emplace_back("preprocess -i '" + w.log + "' -o '" + w.run + "/checkpoints'",
                     "a file attnrec manages");
  cases.emplace_back("generate --out '" + w.prep + "'", "not the unchanged output");
  cases.emplace_back("generate --out '" + w.run + "/checkpoints'", "a file attnrec manages");
  // A symbolic link and a hard link to an input are the input.
  fs::create_symlink(test, w.dir.file("link.tsv"));
  fs::create_hard_link(test, w.dir.file("hard.tsv"));
  for (const char* alias : {"link.tsv", "hard.tsv"}) {
    cases.emplace_back("predict --checkpoint '" + w.run + "' --data '" + test + "' --output '" +
                           w.dir.file(alias) + "'",
                       "is the input --data");
  }
  for (const auto& [command, message] : cases) {
    INFO(command);
    expect_refusal(cli(command), message);
  }
  before.check_unchanged();
  CHECK(fs::is_symlink(w.dir.file("link.tsv")));
}

TEST_CASE("outputs to FIFOs, devices and stdout are written in place, write errors reported",
          "[safety]") {
  auto& w = world();
  REQUIRE(w.train_code == 0);
  TempDir scratch;
  const std::string predict =
      "predict --checkpoint '" + w.run + "' --data '" + w.data + "/test.tsv' --output ";
  SECTION("a FIFO stays a FIFO and its reader gets every line") {
    const auto fifo = scratch.file("fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    std::string got;
    std::thread reader([&] { got = read_text(fifo); });
    const auto r = cli(predict + "'" + fifo + "'");
    // Should the command have failed before opening the FIFO, open it here so the reader ends.
    const int unblock = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (unblock >= 0) ::close(unblock);
    reader.join();
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK(std::count(got.begin(), got.end(), '\n') == 201);
    struct stat st {};
    REQUIRE(::stat(fifo.c_str(), &st) == 0);
    CHECK(S_ISFIFO(st.st_mode));
  }
  SECTION("stdout: -") {
    const auto r = cli(predict + "-");
    CHECK(r.code == 0);
    CHECK(r.out.rfind("line\tuser\titem\tscore\n", 0) == 0);
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 201);
  }
  SECTION("device nodes made by the test: null and full") {
    const auto null = scratch.file("null"), full = scratch.file("full");
    std::string why_not = make_device_node(null, 1, 3);
    if (why_not.empty()) why_not = make_device_node(full, 1, 7);
    if (!why_not.empty()) {
      WARN("skipped: " << why_not);
      return;
    }
    auto r = cli(predict + "'" + null + "'");
    CHECK(r.code == 0);
    r = cli("evaluate --checkpoint '" + w.run + "' --data '" + w.data + "/test.tsv' --output '" +
            null + "'");
    CHECK(r.code == 0);
    struct stat st {};
    REQUIRE(::stat(null.c_str(), &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
    r = cli(predict + "'" + full + "'");
    INFO(r.err);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Contains(full + ": cannot write file: No space left on device"));
    REQUIRE(::stat(full.c_str(), &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
  }
}

TEST_CASE("untrusted sizes, devices, numbers and text get clear exit-2 errors", "[safety]") {
  auto& w = world();
  REQUIRE(w.train_code == 0);
  TempDir scratch;
  const std::string digits(100000, '7');
  SECTION("device strings are checked before LibTorch sees them") {
    write_text(scratch.file("dev.json"), R"({"train": {"device": "cuda:)" + digits + R"("}})");
    expect_refusal(cli("config --check --config '" + scratch.file("dev.json") + "'"),
                   "/train/device: expected auto, cpu, cuda or cuda:N");
    expect_refusal(cli("train --config '" + w.config + "' --run-dir '" + scratch.file("r") +
                       "' --set train.device=cuda:" + digits),
                   "(100005 characters)");
    expect_refusal(cli("evaluate --checkpoint '" + w.run + "' --data '" + w.data +
                       "/test.tsv' --set train.device=cuda:-1"),
                   "/train/device: expected auto, cpu, cuda or cuda:N");
    CHECK_FALSE(fs::exists(scratch.file("r")));
  }
  SECTION("thread counts are validated in one place") {
    expect_refusal(cli("evaluate --checkpoint '" + w.run + "' --data '" + w.data +
                       "/test.tsv' --set train.threads=99999"),
                   "/train/threads: out of range: expected [0, 1024], got 99999");
    expect_refusal(cli("bench --set train.threads=-3 --samples 256"), "/train/threads");
    expect_refusal(cli("config --check --set train.threads=5000"), "/train/threads");
  }
  SECTION("generate rejects NaN and infinite parameters instead of looping") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    for (const double bad : {nan, inf, -inf}) {
      for (double attnrec::SyntheticOptions::*field :
           {&attnrec::SyntheticOptions::zipf, &attnrec::SyntheticOptions::noise,
            &attnrec::SyntheticOptions::slope, &attnrec::SyntheticOptions::bias,
            &attnrec::SyntheticOptions::popularity_weight,
            &attnrec::SyntheticOptions::in_interest}) {
        attnrec::SyntheticOptions o;
        o.*field = bad;
        CHECK_THROWS_AS(o.validate(), attnrec::UsageError);
      }
      for (double attnrec::LogOptions::*field :
           {&attnrec::LogOptions::stay, &attnrec::LogOptions::explore,
            &attnrec::LogOptions::zipf}) {
        attnrec::LogOptions o;
        o.*field = bad;
        CHECK_THROWS_AS(o.validate(), attnrec::UsageError);
      }
    }
    // Through the binary, as the issue saw it (it used to loop forever).
    expect_refusal(cli("generate --out '" + scratch.file("g") + "' --noise nan"),
                   "--noise must be a finite number, got nan");
    expect_refusal(cli("generate --log '" + scratch.file("log.dat") + "' --stay inf"),
                   "--stay must be in [0, 1], got inf");
    CHECK_FALSE(fs::exists(scratch.file("g")));
    CHECK_FALSE(fs::exists(scratch.file("log.dat")));
  }
  SECTION("JSON number overflow, non-finite --set values, invalid UTF-8") {
    write_text(scratch.file("big.json"), "{\n  \"train\": {\"lr\": 1e400}\n}\n");
    expect_refusal(cli("config --check --config '" + scratch.file("big.json") + "'"),
                   "big.json:2:19: number 1e400 is out of range");
    expect_refusal(cli("config --check --set train.lr=1e400"),
                   "/train/lr: \"1e400\" is not a "
                   "finite number");
    expect_refusal(cli("config --check --set train.grad_clip=nan"), "/train/grad_clip");
    // (printf: the test shell is /bin/sh, which has no $'...' quoting.)
    expect_refusal(cli("config --check --set \"$(printf 'data.train=\\377\\376')\""),
                   "not valid UTF-8");
    expect_refusal(cli("predict --checkpoint '" + w.run +
                       "' --data \"$(printf '\\303(')\" "
                       "--output -"),
                   "not valid UTF-8");
  }
  SECTION("checkpoint size fields are checked against the file before allocating") {
    const std::string bytes = read_text(w.run + "/checkpoints/final.pt");
    const auto l1 = bytes.find('\n'), l2 = bytes.find('\n', l1 + 1);
    const auto huge = scratch.file("huge.pt");
    write_text(huge, bytes.substr(0, l1 + 1) + "4000000000 4000000000 " + std::string(64, '0') +
                         bytes.substr(l2));
    expect_refusal(cli("inspect '" + huge + "'"),
                   "truncated checkpoint (its header announces 8000000000 bytes of data");
    // Under 4 GB of address space, far below what trusting the header would allocate. Not
    // under AddressSanitizer, whose shadow memory alone reserves more address space than that.
#if defined(__SANITIZE_ADDRESS__) || defined(ATTNREC_ASAN)
    return;
#endif
    const auto limited = std::system(("bash -c \"ulimit -v 4000000; OMP_WAIT_POLICY=PASSIVE '" +
                                      binary_path() + "' inspect '" + huge + "' 2>/dev/null\"")
                                         .c_str());
    CHECK(WEXITSTATUS(limited) == 2);
  }
  SECTION("negative planted positions in an oracle") {
    auto oracle = nlohmann::json::parse(read_text(w.data + "/oracle.json"));
    oracle["test_planted_positions"][3] = {2, -7};
    write_text(scratch.file("oracle.json"), oracle.dump());
    expect_refusal(cli("evaluate --checkpoint '" + w.run + "' --data '" + w.data +
                       "/test.tsv' --oracle '" + scratch.file("oracle.json") + "'"),
                   "/test_planted_positions/3/1: a history position must be >= 0, got -7");
  }
}

namespace {

/// What main() would make of loading `path` as evaluate and inspect do: 0 (loaded), the exit
/// code of an attnrec::Error, or -1 for any other exception (an "internal error").
int load_outcome(const std::string& path, std::string& message) {
  try {
    attnrec::read_checkpoint_meta(path);
    attnrec::load_model(path, torch::kCPU);
    return 0;
  } catch (const attnrec::Error& e) {
    message = e.what();
    return static_cast<int>(e.exit_code());
  } catch (const std::exception& e) {
    message = e.what();
    return -1;
  }
}

}  // namespace

TEST_CASE("checkpoint header bit flips always end in a clear exit-2 error", "[safety]") {
  auto& w = world();
  REQUIRE(w.train_code == 0);
  TempDir scratch;
  const auto run = copy_run(w.run, scratch.file("run"));
  const auto forged = run + "/checkpoints/f.pt";  // beside the vocabularies it references
  const std::string bytes = read_text(w.run + "/checkpoints/final.pt");
  const auto l1 = bytes.find('\n'), l2 = bytes.find('\n', l1 + 1);
  std::string message;
  // Every bit of the two header lines.
  for (std::size_t i = 0; i < l2 + 1; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      write_text(forged, flipped);
      INFO("byte " << i << " bit " << bit);
      CHECK(load_outcome(forged, message) == 2);
    }
  }
  // Flips inside the meta JSON with its size and checksum recomputed, as a tool that knows the
  // format would write them: they reach the field checks, and each ends in success (a harmless
  // change such as a digit of a metric) or a clear exit-2 error, never in anything else.
  std::istringstream sizes(bytes.substr(l1 + 1, l2 - l1 - 1));
  std::size_t meta_bytes = 0;
  sizes >> meta_bytes;
  const std::string payload = bytes.substr(l2 + 1 + meta_bytes);
  int refused = 0, loaded = 0;
  for (std::size_t i = 0; i < meta_bytes; i += 3) {
    std::string meta = bytes.substr(l2 + 1, meta_bytes);
    meta[i] = static_cast<char>(meta[i] ^ (1 << (i % 7)));
    attnrec::Sha256 h;
    h.update(meta);
    h.update(payload);
    write_text(forged, bytes.substr(0, l1 + 1) + std::to_string(meta.size()) + " " +
                           std::to_string(payload.size()) + " " + h.hex() + "\n" + meta + payload);
    const int outcome = load_outcome(forged, message);
    INFO("meta byte " << i << " (" << meta.substr(i > 20 ? i - 20 : 0, 40) << "): " << message);
    CHECK((outcome == 0 || outcome == 2));
    refused += outcome == 2;
    loaded += outcome == 0;
  }
  CHECK(refused > loaded);  // most flips break a name, a type or a value the checks see
  // The same through the binary, for a few: exit 2, never "internal error".
  for (const std::size_t i : {std::size_t{3}, l1 + 2, l1 + 30}) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x04);
    write_text(forged, flipped);
    expect_refusal(cli("inspect '" + forged + "'"), forged);
  }
}

TEST_CASE("preprocess never replaces files it did not write, unless --overwrite", "[safety]") {
  auto& w = world();
  TempDir scratch;
  const auto snapshot = [](const std::string& dir) {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_regular_file()) files[e.path().filename().string()] = read_text(e.path().string());
    }
    return files;
  };
  const std::string again = "--log-level warn preprocess -i '" + w.log + "' --min-rating 1 -o ";
  // generate's output (its own protocol.json included), and a folder with somebody's train.tsv.
  const std::string generated = scratch.file("generated"), mine = scratch.file("mine");
  fs::copy(w.data, generated);
  fs::create_directories(mine);
  write_text(mine + "/train.tsv", "my own file\n");
  for (const auto& dir : {generated, mine}) {
    INFO(dir);
    const auto before = snapshot(dir);
    const auto r = cli(again + "'" + dir + "'");
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains("is not the unchanged output of an earlier attnrec preprocess") &&
                          Contains("--overwrite") && Contains("nothing was written"));
    CHECK(snapshot(dir) == before);
  }
  // Its own unchanged output is replaced; a changed file of it is not; --overwrite replaces.
  const std::string own = scratch.file("own");
  fs::copy(w.prep, own);
  CHECK(cli(again + "'" + own + "'").code == 0);
  write_text(own + "/valid.tsv", "edited by hand\n");
  const auto edited = cli(again + "'" + own + "'");
  CHECK(edited.code == 2);
  CHECK_THAT(edited.err, Contains("not the unchanged output"));
  CHECK(read_text(own + "/valid.tsv") == "edited by hand\n");
  CHECK(cli(again + "'" + mine + "' --overwrite").code == 0);
  CHECK(read_text(mine + "/train.tsv") != "my own file\n");
}

TEST_CASE("regressions: deeply nested checkpoint meta and a CSV log whose first line is blank",
          "[safety]") {
  auto& w = world();
  TempDir scratch;
  // Meta JSON nested 200,000 deep (checksum recomputed): a clear exit-2 error, or (for an extra
  // key) a normal run, never a crash.
  const auto run = copy_run(w.run, scratch.file("deep"));
  const std::string checkpoint = run + "/checkpoints/final.pt";
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  const std::string original = read_text(checkpoint);
  forge_checkpoint_text(checkpoint, [&](const std::string& text) {
    return text.substr(0, text.rfind('}')) + ", \"deep\": " + deep + "}";
  });
  for (const std::string& command :
       {"inspect '" + checkpoint + "'",
        "evaluate --checkpoint '" + checkpoint + "' --data '" + w.data + "/test.tsv'"}) {
    INFO(command);
    const auto r = cli(command);
    CHECK((r.code == 0 || r.code == 2));
  }
  write_text(checkpoint, original);
  std::string objects;
  for (int i = 0; i < 200000; ++i) objects += "{\"a\":";
  objects += "1" + std::string(200000, '}');
  forge_checkpoint_text(checkpoint, [&](const std::string&) { return objects; });
  for (const std::string& command :
       {"inspect '" + checkpoint + "'",
        "evaluate --checkpoint '" + checkpoint + "' --data '" + w.data + "/test.tsv'",
        "train --resume '" + checkpoint + "'"}) {
    INFO(command);
    const auto r = cli(command);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains("checkpoint header"));
  }
  // A CSV log whose first line is blank: the header is the first line that is not blank (the
  // columns were read from an unresolved mapping before: out of bounds, found again by
  // fuzz_preprocess under UBSan), so both mappings read the same interactions.
  const std::string log =
      write_text(scratch.file("blank.csv"),
                 "\nuser,item,rating,time\n1,2,5,100\n1,3,4,101\n"
                 "2,2,5,100\n2,3,4,101\n2,4,3,102\n3,5,5,100\n3,6,4,101\n3,7,3,102\n");
  for (const std::string& columns : {"user=user,item=item,time=time", "user=0,item=1,time=3"}) {
    INFO(columns);
    const auto r = cli("preprocess -i '" + log + "' -o '" +
                       scratch.file("out-" + columns.substr(6, 1)) + "' --format csv --columns " +
                       columns + " --header --ranking-negatives 0 --min-history 0");
    INFO(r.err);
    REQUIRE(r.code == 0);
    const auto stats = scratch.file("out-" + columns.substr(6, 1)) + "/stats.json";
    CHECK(nlohmann::json::parse(read_text(stats))["kept"]["interactions"] == 8);
  }
}

TEST_CASE("regressions: a damaged LibTorch payload under a valid checksum is a clear exit-2 error",
          "[safety]") {
  // Found by fuzz/fuzz_checkpoint.cpp: TorchScript code in the archive that does not parse made
  // LibTorch throw an ErrorReport (not a c10::Error), which escaped as an "internal error" with
  // exit code 1.
  auto& w = world();
  TempDir scratch;
  const auto run = copy_run(w.run, scratch.file("damaged"));
  const std::string checkpoint = run + "/checkpoints/final.pt";
  bool damaged = false;
  forge_checkpoint_text(
      checkpoint, [](const std::string& text) { return text; },
      [&](std::string payload) {
        const auto at = payload.find("class ");
        damaged = at != std::string::npos;
        if (damaged) payload.replace(at, 6, "clasod");  // same length: the archive still opens
        return payload;
      });
  REQUIRE(damaged);
  for (const std::string& command :
       {"evaluate --checkpoint '" + checkpoint + "' --data '" + w.data + "/test.tsv'",
        "predict --checkpoint '" + checkpoint + "' --data '" + w.data + "/test.tsv' --output '" +
            scratch.file("scores.tsv") + "'",
        "train --resume '" + checkpoint + "'"}) {
    INFO(command);
    const auto r = cli(command);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains("final.pt: unreadable checkpoint payload"));
    CHECK_FALSE(fs::exists(scratch.file("scores.tsv")));
    CHECK_THAT(r.err, !Contains("internal error"));
  }
}
