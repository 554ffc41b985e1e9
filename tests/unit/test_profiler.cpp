// The profiler's Chrome trace: written where asked, JSON, naming the operators that ran.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "attnrec/util/error.hpp"
#include "attnrec/util/profiler.hpp"
#include "support.hpp"

using namespace attnrec;
using namespace attnrec::test;

TEST_CASE("profiler: a trace names the operators that ran while it recorded", "[profiler]") {
  TempDir dir;
  const auto path = dir.file("sub/trace.json");  // the folder is created
  const auto before = torch::randn({16, 16});
  (void)torch::mm(before, before);  // before the recording: not in the trace
  {
    TraceRecorder recorder(/*cuda=*/false);
    const auto a = torch::randn({16, 16});
    (void)torch::addmm(a, a, a);
    recorder.save(path);
  }
  const auto trace = nlohmann::json::parse(read_text(path));
  REQUIRE(trace.contains("traceEvents"));
  int addmm = 0, mm = 0;
  for (const auto& e : trace["traceEvents"]) {
    const auto name = e.value("name", std::string());
    addmm += name == "aten::addmm";
    mm += name == "aten::mm";
  }
  CHECK(addmm == 1);
  CHECK(mm == 0);
  // A second recording in the same process works (the first one stopped).
  TraceRecorder again(false);
  (void)torch::mm(before, before);
  again.save(dir.file("again.json"));
  CHECK(read_text(dir.file("again.json")).find("aten::mm") != std::string::npos);
}

TEST_CASE("profiler: an unwritable trace path is an IoError naming it", "[profiler]") {
  TempDir dir;
  write_text(dir.file("file"), "x");
  TraceRecorder recorder(false);
  (void)torch::ones({2});
  const auto path = dir.file("file/trace.json");  // under a regular file
  CHECK_THROWS_AS(recorder.save(path), IoError);
  // The recorder stopped: a new one can start.
  TraceRecorder next(false);
  next.save(dir.file("ok.json"));
}
