#pragma once
/// \file Logging set-up. attnrec logs through spdlog's default logger: to stderr, and optionally
/// to a file in the run directory.

#include <string>

namespace attnrec {

/// Configures the default logger: stderr, level from `level` ("debug", "info", "warn", "error").
void init_logging(const std::string& level = "info");

/// Adds a file sink (appending) to the default logger, e.g. `RUN_DIR/train.log`.
void add_log_file(const std::string& path);

}  // namespace attnrec
