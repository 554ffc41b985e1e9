#include "attnrec/util/logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <cerrno>
#include <fstream>

#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/progress.hpp"

namespace attnrec {

namespace {

constexpr const char* kFilePattern = "[%Y-%m-%d %H:%M:%S] [%l] %v";
// Lines logged before a command knows its run directory is safe to write (data read, checks
// done) are kept here and written to the log file when it is opened.
constexpr std::size_t kEarlyLines = 4096;

std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt>& early_sink() {
  static std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink;
  return sink;
}

std::string& label() {
  static std::string text;
  return text;
}

}  // namespace

const std::string& process_label() { return label(); }

void set_log_rank(int rank, int world_size) {
  label() = "rank " + std::to_string(rank) + " of " + std::to_string(world_size) + ": ";
  auto logger = spdlog::default_logger();
  if (!logger) return;
  logger->sinks().front()->set_pattern("[%Y-%m-%d %H:%M:%S] [rank " + std::to_string(rank) +
                                       "] [%^%l%$] %v");
  if (rank != 0 && logger->level() < spdlog::level::warn) logger->set_level(spdlog::level::warn);
}

void init_logging(const std::string& level) {
  // Records on stderr clear the progress bar's line first and redraw it after.
  auto logger = std::make_shared<spdlog::logger>(
      "attnrec", bar_aware_sink(std::make_shared<spdlog::sinks::stderr_color_sink_mt>()));
  logger->set_pattern("[%Y-%m-%d %H:%M:%S] [%^%l%$] %v");
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    throw UsageError("--log-level: unknown level '" + level +
                     "'; expected one of: trace, debug, info, warn, error, off");
  }
  // stderr shows `level`; the run's log file always gets info and above (train.log is the
  // record of a run: its resumes, its data and its checks), so the logger passes at least info.
  logger->sinks().front()->set_level(parsed);
  logger->set_level(std::min(parsed, spdlog::level::info));
  early_sink() = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(kEarlyLines);
  early_sink()->set_pattern(kFilePattern);
  logger->sinks().push_back(early_sink());
  spdlog::set_default_logger(logger);
}

void add_log_file(const std::string& path) {
  try {
    auto& sinks = spdlog::default_logger()->sinks();
    if (auto early = early_sink()) {
      errno = 0;
      std::ofstream out(path, std::ios::app);
      for (const auto& line : early->last_formatted()) out << line;
      out.flush();
      if (!out) throw IoError(path + ": cannot write log file" + errno_reason());
      sinks.erase(std::remove(sinks.begin(), sinks.end(), early), sinks.end());
      early_sink().reset();
    }
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false);
    sink->set_pattern(kFilePattern);
    sinks.push_back(sink);
    // Flush every info line so `tail -f train.log` (and a crash) sees the log up to date; info
    // lines come every log_every_steps steps, so this costs nothing measurable.
    spdlog::default_logger()->flush_on(spdlog::level::info);
  } catch (const spdlog::spdlog_ex& e) {
    throw IoError(path + ": cannot open log file: " + e.what());
  }
}

}  // namespace attnrec
