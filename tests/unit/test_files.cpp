// Safe writing, output checks, the run-directory layout, device strings and UTF-8.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <thread>

#include "attnrec/io/metrics_log.hpp"
#include "attnrec/io/outputs.hpp"
#include "attnrec/io/run_dir.hpp"
#include "attnrec/util/device_spec.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/strings.hpp"
#include "support.hpp"

using namespace attnrec;
using attnrec::test::make_device_node;
using attnrec::test::read_text;
using attnrec::test::TempDir;
using attnrec::test::write_text;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

TEST_CASE("AtomicFileWriter: regular files are replaced whole, links are followed", "[files]") {
  TempDir dir;
  const auto path = dir.file("out.txt");
  write_file_atomic(path, "old\n");
  {
    AtomicFileWriter w(path);
    CHECK(w.kind() == OutputKind::regular);
    w.write("new\n");
    // Not committed: the old content stays and no temporary file is left.
  }
  CHECK(read_text(path) == "old\n");
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
  write_file_atomic(path, "new\n");
  CHECK(read_text(path) == "new\n");
  // Writing through a symbolic link replaces the file it points to; the link stays a link.
  fs::create_symlink(path, dir.file("link.txt"));
  write_file_atomic(dir.file("link.txt"), "through the link\n");
  CHECK(fs::is_symlink(dir.file("link.txt")));
  CHECK(read_text(path) == "through the link\n");
  // A directory is not a file to write.
  CHECK_THROWS_AS(output_kind(dir.path().string()), UsageError);
}

TEST_CASE("AtomicFileWriter: FIFOs are written in place and errors reported", "[files]") {
  TempDir dir;
  const auto fifo = dir.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(output_kind(fifo) == OutputKind::direct);
  std::string got;
  std::thread reader([&] { got = read_text(fifo); });
  {
    AtomicFileWriter w(fifo, "report");
    CHECK(w.kind() == OutputKind::direct);
    w.write(std::string(3 << 20, 'x'));  // larger than the buffer and the pipe
    w.write("end\n");
    // A header rewrite needs a seekable regular file.
    CHECK_THROWS_WITH(w.overwrite(0, "y"), Contains("can only be written to a regular file"));
    w.commit();
  }
  reader.join();
  CHECK(got.size() == (3u << 20) + 4);
  struct stat st {};
  REQUIRE(::stat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK(output_kind("-") == OutputKind::stdout_);
  // A failing write (a reader that went away: EPIPE; SIGPIPE ignored as for a full device).
  REQUIRE(::mkfifo(dir.file("closed").c_str(), 0600) == 0);
  const int rd = ::open(dir.file("closed").c_str(), O_RDONLY | O_NONBLOCK);
  REQUIRE(rd >= 0);
  AtomicFileWriter w(dir.file("closed"), "report");
  ::close(rd);
  auto* previous = std::signal(SIGPIPE, SIG_IGN);
  w.write("x\n");
  CHECK_THROWS_WITH(w.commit(), Contains(dir.file("closed") + ": cannot write report"));
  std::signal(SIGPIPE, previous);
}

TEST_CASE("RunDir: the layout owns its files and nothing else", "[files]") {
  CHECK(RunDir::owns("config.json"));
  CHECK(RunDir::owns("items.vocab"));
  CHECK(RunDir::owns(".lock"));
  CHECK(RunDir::owns("checkpoints/anything.pt"));
  CHECK(RunDir::owns("checkpoints/../metrics.jsonl"));
  CHECK(RunDir::owns(".summary.json.tmp123"));
  CHECK_FALSE(RunDir::owns("test_metrics.json"));
  CHECK_FALSE(RunDir::owns("train.tsv"));
  CHECK(RunDir::is_periodic_name("step-000000120.pt"));
  CHECK(RunDir::is_periodic_name("step-1000000000.pt"));
  CHECK_FALSE(RunDir::is_periodic_name("step--00000005.pt"));
  CHECK_FALSE(RunDir::is_periodic_name("step-00000012.pt"));
  CHECK_FALSE(RunDir::is_periodic_name("best.pt"));

  TempDir dir;
  const RunDir run{dir.file("run")};
  fs::create_directories(run.checkpoints());
  write_text(run.config(), "{}");
  write_text(run.lock(), "");
  write_text(run.periodic(20), "x");
  write_text(run.periodic(3), "x");
  write_text(run.latest_pointer(), "step-000000020.pt\n");
  write_text(run.root + "/notes.txt", "mine");
  write_text(run.checkpoints() + "/readme.txt", "mine too");
  CHECK(run.holds_run());
  CHECK(run.periodic_checkpoints() == std::vector<std::string>{run.periodic(3), run.periodic(20)});
  const auto owned = run.owned_files();
  CHECK(std::find(owned.begin(), owned.end(), run.config()) != owned.end());
  CHECK(std::find(owned.begin(), owned.end(), run.root + "/notes.txt") == owned.end());
  CHECK(std::find(owned.begin(), owned.end(), run.checkpoints() + "/readme.txt") == owned.end());
  CHECK(run.latest() == run.periodic(20));
  CHECK(resolve_checkpoint_path(run.root) == run.periodic(20));
  // `latest` may name only a periodic checkpoint (never a path out of the run).
  write_text(run.latest_pointer(), "../../etc/passwd\n");
  CHECK_THROWS_AS(run.latest(), CheckpointError);
  // The enclosing run of a path inside it, and of a checkpoint file.
  REQUIRE(enclosing_run(run.checkpoints() + "/new.pt"));
  CHECK(fs::equivalent(enclosing_run(run.checkpoints() + "/new.pt")->root, run.root));
  CHECK_FALSE(enclosing_run(dir.file("elsewhere.json")));
  CHECK(run_of_checkpoint(run.periodic(3)));
  CHECK_FALSE(run_of_checkpoint(dir.file("x.pt")));
}

TEST_CASE("OutputGuard: inputs, other outputs and run files are refused", "[files]") {
  TempDir dir;
  const auto data = write_text(dir.file("data.tsv"), "x");
  fs::create_directories(dir.file("sub"));
  OutputGuard guard;
  guard.input(data, "--data");
  CHECK_THROWS_WITH(guard.output(data, "--output"), Contains("is the input --data"));
  CHECK_THROWS_WITH(guard.output(dir.file("sub/../data.tsv"), "--output"),
                    Contains("is the input --data"));
  fs::create_hard_link(data, dir.file("hard.tsv"));
  CHECK_THROWS_WITH(guard.output(dir.file("hard.tsv"), "--output"), Contains("is the input"));
  guard.output(dir.file("a.json"), "--output");
  CHECK_THROWS_WITH(guard.output(dir.file("a.json"), "--predictions"),
                    Contains("is also the path of --output"));
  guard.output("-", "--predictions");  // stdout is never refused
  CHECK_THROWS_AS(guard.output(dir.file("sub"), "--report"), UsageError);

  const RunDir run{dir.file("run")};
  fs::create_directories(run.checkpoints());
  write_text(run.config(), "{}");
  for (const auto& owned : {run.config(), run.items_vocab(), run.best(), run.checkpoints() + "/x",
                            run.lock(), run.metrics()}) {
    INFO(owned);
    CHECK_THROWS_WITH(OutputGuard().output(owned, "--output"), Contains("a file attnrec manages"));
  }
  OutputGuard().output(run.root + "/test_metrics.json", "--output");  // the user's own file
}

TEST_CASE("device strings and UTF-8 are checked by attnrec", "[files]") {
  CHECK(parse_device_spec("auto")->kind == DeviceSpec::Kind::automatic);
  CHECK(parse_device_spec("cpu")->kind == DeviceSpec::Kind::cpu);
  CHECK(parse_device_spec("cuda")->index == 0);
  CHECK(parse_device_spec("cuda:7")->index == 7);
  CHECK(parse_device_spec("cuda:1023")->index == 1023);
  for (const char* bad : {"", "gpu", "cuda:", "cuda:-1", "cuda:1024", "cuda:00001", "cuda:1x",
                          "cuda1", "CPU", " cpu"}) {
    INFO(bad);
    CHECK_FALSE(parse_device_spec(bad));
  }
  CHECK_FALSE(parse_device_spec("cuda:" + std::string(100000, '9')));
  CHECK(quote_for_message(std::string(100, 'a')) ==
        "\"" + std::string(40, 'a') + "...\" (100 characters)");

  CHECK(is_valid_utf8("plain ascii"));
  CHECK(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  for (const char* bad :
       {"\xff", "\xc3", "\xc3\x28", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    CHECK_FALSE(is_valid_utf8(bad));
  }
}

TEST_CASE("a failed stream write names its reason: metrics on a full device", "[files]") {
  // Streams keep no reason for a failure; errno_reason() adds the failed write's (found by
  // scripts/faults.sh: a full disk was reported as a bare "cannot write").
  TempDir dir;
  const auto full = dir.file("full");
  if (const auto why_not = make_device_node(full, 1, 7); !why_not.empty()) {
    WARN("skipped: " << why_not);
    return;
  }
  // More than a stream buffer, so that the write reaches the device.
  const nlohmann::json row = {{"step", 1}, {"note", std::string(100000, 'x')}};
  CHECK_THROWS_WITH(MetricsLog(full).append(row),
                    Contains(full + ": cannot append metrics: No space left on device"));
  errno = 0;
  CHECK(errno_reason().empty());
  errno = ENOSPC;
  CHECK(errno_reason() == ": No space left on device");
}
