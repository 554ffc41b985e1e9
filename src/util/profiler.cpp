#include "attnrec/util/profiler.hpp"

#include <torch/csrc/autograd/profiler_kineto.h>

#include <unistd.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>
#include <utility>

#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"

namespace attnrec {

namespace {

namespace prof = torch::profiler::impl;

prof::ProfilerConfig trace_config() { return prof::ProfilerConfig(prof::ProfilerState::KINETO); }

std::set<prof::ActivityType> activities(bool cuda) {
  std::set<prof::ActivityType> a{prof::ActivityType::CPU};
  if (cuda) a.insert(prof::ActivityType::CUDA);
  return a;
}

// An event's start and duration in microseconds: LibTorch 2.x counts nanoseconds, 1.13
// microseconds (the int/long argument picks the first overload that compiles).
template <class Event>
auto times_us(const Event& e, int) -> decltype(e.startNs(), std::pair<double, double>()) {
  return {static_cast<double>(e.startNs()) / 1e3, static_cast<double>(e.durationNs()) / 1e3};
}
template <class Event>
std::pair<double, double> times_us(const Event& e, long) {
  return {static_cast<double>(e.startUs()), static_cast<double>(e.durationUs())};
}

/// The trace a LibTorch built without Kineto (Debian's 1.13) cannot save itself: its host
/// operators, in the Chrome format Kineto writes (user scopes as "user_annotation").
void write_host_trace(const torch::autograd::profiler::ProfilerResult& result,
                      const std::string& path) {
  auto events = nlohmann::json::array();
  const auto pid = static_cast<std::int64_t>(::getpid());
  for (const auto& e : result.events()) {
    const bool user = e.scope() == static_cast<std::uint8_t>(at::RecordScope::USER_SCOPE);
    const auto [start, duration] = times_us(e, 0);
    events.push_back({{"ph", "X"},
                      {"cat", user ? "user_annotation" : "cpu_op"},
                      {"name", e.name()},
                      {"pid", pid},
                      {"tid", e.startThreadId()},
                      {"ts", start},
                      {"dur", duration}});
  }
  AtomicFileWriter out(path, "profiler trace");
  out.write(nlohmann::json{{"traceEvents", events},
                           {"note", "host operators only: this LibTorch has no Kineto"}}
                .dump());
  out.commit();
}

}  // namespace

TraceRecorder::TraceRecorder(bool cuda) {
  TORCH_CHECK(!prof::profilerEnabled(), "TraceRecorder: expected no profiler running, got one");
  torch::autograd::profiler::prepareProfiler(trace_config(), activities(cuda));
  torch::autograd::profiler::enableProfiler(trace_config(), activities(cuda));
  running_ = true;
}

TraceRecorder::~TraceRecorder() {
  if (running_) torch::autograd::profiler::disableProfiler();
}

void TraceRecorder::save(const std::string& path) {
  TORCH_CHECK(running_, "TraceRecorder::save: expected a running recorder, got a stopped one");
  running_ = false;
  const auto result = torch::autograd::profiler::disableProfiler();
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  // Kineto reports a failed write only in its log: an old trace left there would pass for new.
  std::filesystem::remove(path, ec);
  try {
    result->save(path);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    if (what.find("Kineto") == std::string::npos) {
      throw IoError(path + ": cannot write the profiler's trace (" + what +
                    "); choose a writable folder");
    }
    write_host_trace(*result, path);  // an IoError names the path if this fails too
  } catch (const std::exception& e) {
    throw IoError(path + ": cannot write the profiler's trace (" + e.what() +
                  "); choose a writable folder");
  }
  if (!std::filesystem::exists(path)) {
    throw IoError(path + ": the profiler wrote no trace (check that the folder is writable)");
  }
}

}  // namespace attnrec
