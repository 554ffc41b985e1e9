#include "attnrec/util/logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "attnrec/util/error.hpp"

namespace attnrec {

void init_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("attnrec");
  logger->set_pattern("[%Y-%m-%d %H:%M:%S] [%^%l%$] %v");
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    throw UsageError("--log-level: unknown level '" + level +
                     "'; expected one of: trace, debug, info, warn, error, off");
  }
  logger->set_level(parsed);
  spdlog::set_default_logger(logger);
}

void add_log_file(const std::string& path) {
  try {
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false);
    sink->set_pattern("[%Y-%m-%d %H:%M:%S] [%l] %v");
    spdlog::default_logger()->sinks().push_back(sink);
    // Flush every info line so `tail -f train.log` (and a crash) sees the log up to date; info
    // lines come every log_every_steps steps, so this costs nothing measurable.
    spdlog::default_logger()->flush_on(spdlog::level::info);
  } catch (const spdlog::spdlog_ex& e) {
    throw IoError(path + ": cannot open log file: " + e.what());
  }
}

}  // namespace attnrec
