// train.tensorboard: the event files' framing (CRC-32C, masked CRCs), and the files of a real
// run read back by TensorBoard's own reader, every validation scalar equal to metrics.jsonl,
// across a resume.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <sstream>

#include "attnrec/io/tensorboard.hpp"
#include "attnrec/util/hash.hpp"
#include "cli_data.hpp"
#include "net_support.hpp"
#include "support.hpp"

using namespace attnrec;
using namespace attnrec::test;
using Catch::Matchers::Contains;

namespace {

std::uint32_t masked(std::uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

template <class T>
T read_le(const std::string& s, std::size_t at) {
  T v;
  std::memcpy(&v, s.data() + at, sizeof(T));
  return v;
}

/// The records of an event file, each frame's CRCs checked.
std::vector<std::string> records(const std::string& path) {
  const std::string data = read_text(path);
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < data.size()) {
    REQUIRE(at + 12 <= data.size());
    const auto n = read_le<std::uint64_t>(data, at);
    CHECK(read_le<std::uint32_t>(data, at + 8) == masked(crc32c(data.substr(at, 8))));
    REQUIRE(at + 12 + n + 4 <= data.size());
    const std::string record = data.substr(at + 12, n);
    CHECK(read_le<std::uint32_t>(data, at + 12 + n) == masked(crc32c(record)));
    out.push_back(record);
    at += 12 + n + 4;
  }
  return out;
}

/// TensorBoard's own server on `logdir`, its scalars page loaded in headless Chromium: the DOM
/// shows the training-loss chart, and a screenshot is taken.
void check_in_browser(const std::string& python, const std::string& logdir, const TempDir& dir) {
  if (std::system("chromium --version >/dev/null 2>&1") != 0) {
    WARN("SKIPPED: no chromium (scripts/test.sh installs Debian's chromium)");
    return;
  }
  const int port = free_port();
  const std::string tensorboard =
      std::filesystem::path(python).parent_path().string() + "/tensorboard";
  std::fflush(stdout);
  const pid_t server = ::fork();
  if (server == 0) {
    std::freopen(dir.file("tensorboard.log").c_str(), "w", stdout);
    std::freopen(dir.file("tensorboard.log").c_str(), "a", stderr);
    const std::string p = std::to_string(port);
    ::execl(tensorboard.c_str(), tensorboard.c_str(), "--logdir", logdir.c_str(), "--host",
            "127.0.0.1", "--port", p.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool up = false;
  while (!(up = accepts_connections(port)) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/#timeseries";
  const std::string flags =
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
      "--window-size=1400,1000 --virtual-time-budget=20000 ";
  const std::string dom = dir.file("dom.html"), png = dir.file("tensorboard.png");
  int dumped = -1, shot = -1;
  if (up) {
    dumped = std::system((flags + "--dump-dom '" + url + "' >'" + dom + "' 2>/dev/null").c_str());
    shot =
        std::system((flags + "--screenshot='" + png + "' '" + url + "' >/dev/null 2>&1").c_str());
  }
  ::kill(server, SIGTERM);
  ::waitpid(server, nullptr, 0);
  INFO(read_text(dir.file("tensorboard.log")));
  REQUIRE(up);
  REQUIRE(dumped == 0);
  REQUIRE(shot == 0);
  const std::string page = read_text(dom);
  // The time-series page: a card per scalar tag, the training loss among them, drawn.
  CHECK_THAT(page, Contains("train/loss"));
  CHECK_THAT(page, Contains("valid/auc"));
  CHECK_THAT(page, Contains("<canvas"));
  CHECK(std::filesystem::file_size(png) > 30000);  // a blank page is a few KB
  if (const char* keep = std::getenv("ATTNREC_KEEP_SCREENSHOTS")) {
    std::filesystem::copy_file(png, std::string(keep) + "/tensorboard.png",
                               std::filesystem::copy_options::overwrite_existing);
  }
}

}  // namespace

TEST_CASE("tensorboard: CRC-32C and the TFRecord frame", "[tensorboard]") {
  CHECK(crc32c("") == 0u);
  CHECK(crc32c("123456789") == 0xE3069283u);            // the check value of CRC-32C
  CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAu);  // RFC 3720, B.4
  const std::string frame = tfrecord_frame("abc");
  REQUIRE(frame.size() == 8 + 4 + 3 + 4);
  CHECK(read_le<std::uint64_t>(frame, 0) == 3u);
  CHECK(frame.substr(12, 3) == "abc");
  CHECK(read_le<std::uint32_t>(frame, 15) == masked(crc32c("abc")));
  TempDir dir;
  std::string path;
  {
    EventWriter w(dir.file("tb"), 7);
    w.scalar("valid/auc", 0.75, 9);
    path = w.path();
  }
  CHECK_THAT(path, Contains("/tb/events.out.tfevents."));
  const auto r = records(path);
  REQUIRE(r.size() == 3);  // file version, session start, the scalar
  CHECK(r[0].find("brain.Event:2") != std::string::npos);
  CHECK(r[2].find("valid/auc") != std::string::npos);
  // A second writer in the same directory (a resumed segment) gets a file of its own.
  EventWriter again(dir.file("tb"), 9);
  CHECK(again.path() != path);
}

TEST_CASE("cli train: TensorBoard's reader sees every validation scalar of metrics.jsonl",
          "[cli][tensorboard]") {
  TempDir dir;
  const auto data = prepared_log(dir);
  const std::string run = dir.file("run");
  const std::string train =
      "--log-level warn train --config '" + source_path("configs/default.json") + "' --run-dir '" +
      run + "' --set data.train='" + data + "/train_positives.tsv' --set data.valid='" + data +
      "/valid.tsv' --set data.test= --set train.epochs=3 " +
      "--set model.embedding.dim=8 --set model.encoder.hidden=8 " +
      "--set model.attention.hidden=8 --set train.threads=1 " +
      "--set train.log_every_steps=2 --set train.early_stopping.patience=0 " +
      "--set train.batch_size=64 ";
  // Two segments: stopped after 5 steps, then resumed to the end.
  auto first = run_cli_env("OMP_WAIT_POLICY=PASSIVE", train + "--stop-after-steps 5");
  INFO(first.err);
  REQUIRE(first.code == 0);
  auto second =
      run_cli_env("OMP_WAIT_POLICY=PASSIVE", "--log-level warn train --resume '" + run + "'");
  INFO(second.err);
  REQUIRE(second.code == 0);
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(run + "/tb")) {
    files += e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  }
  CHECK(files == 2);
  const std::string python = source_path(".venv-export/bin/python");
  const std::string probe = "'" + python + "' -c 'import tensorboard' >/dev/null 2>&1";
  if (!std::filesystem::exists(python) || std::system(probe.c_str()) != 0) {
    WARN(
        "SKIPPED: no Python with tensorboard (scripts/test.sh creates .venv-export with "
        "scripts/export_venv.sh)");
    return;
  }
  // TensorBoard's EventAccumulator: every scalar tag as step -> value, one JSON object.
  const std::string script = dir.file("read.py");
  write_text(script,
             "import json, sys\n"
             "from tensorboard.backend.event_processing.event_accumulator import "
             "EventAccumulator\n"
             "acc = EventAccumulator(sys.argv[1], size_guidance={'scalars': 0})\n"
             "acc.Reload()\n"
             "print(json.dumps({t: {str(e.step): e.value for e in acc.Scalars(t)} "
             "for t in acc.Tags()['scalars']}))\n");
  const std::string out = dir.file("scalars.json"), err = dir.file("read.err");
  const int rc = std::system(
      ("'" + python + "' '" + script + "' '" + run + "/tb' >'" + out + "' 2>'" + err + "'")
          .c_str());
  INFO(read_text(err));
  REQUIRE(rc == 0);
  const auto scalars = nlohmann::json::parse(read_text(out));
  const auto rows = read_jsonl(run + "/metrics.jsonl");
  REQUIRE(rows.size() == 3);  // one validation per epoch
  std::size_t compared = 0;
  for (const auto& row : rows) {
    const std::string step = std::to_string(row["step"].get<std::int64_t>());
    for (const auto& [name, value] : row.items()) {
      if (!value.is_number() || name == "step" || name == "epoch") continue;
      INFO(name << " at step " << step);
      const std::string tag = "valid/" + name;
      REQUIRE(scalars.contains(tag));
      REQUIRE(scalars[tag].contains(step));
      // TensorBoard's simple_value is a float.
      CHECK(scalars[tag][step].get<double>() ==
            Approx(static_cast<float>(value.get<double>())).epsilon(1e-6));
      ++compared;
    }
  }
  CHECK(compared >= 30);
  for (const auto& [tag, values] : scalars.items()) {
    if (tag.rfind("valid/", 0) == 0) CHECK(values.size() == rows.size());
  }
  // The training curves, by global step, across both segments.
  REQUIRE(scalars.contains("train/loss"));
  REQUIRE(scalars.contains("train/lr"));
  REQUIRE(scalars.contains("train/samples_per_second"));
  bool before = false, after = false;  // the two segments' steps
  for (const auto& [step, value] : scalars["train/loss"].items()) {
    (std::stoll(step) <= 5 ? before : after) = true;
    CHECK(std::isfinite(value.get<double>()));
  }
  INFO("train/loss: " << scalars["train/loss"].dump() << ", valid steps: " << rows[0]["step"] << " "
                      << rows[1]["step"] << " " << rows[2]["step"]);
  CHECK(before);
  CHECK(after);
  check_in_browser(python, run + "/tb", dir);
}
