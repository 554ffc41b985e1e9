#pragma once
/// \file Logging set-up. attnrec logs through spdlog's default logger: to stderr, and optionally
/// to a file in the run directory.

#include <string>

namespace attnrec {

/// Configures the default logger: stderr, level from `level` ("debug", "info", "warn", "error").
void init_logging(const std::string& level = "info");

/// Adds a file sink (appending) to the default logger, e.g. `RUN_DIR/train.log`. The lines
/// logged since init_logging() are written to the file first, so a command can open its log
/// only once it is sure to change the run directory.
void add_log_file(const std::string& path);

/// Multi-process training: every stderr line of this process starts with "[rank N]"; ranks
/// other than 0 log warnings and errors only (rank 0 speaks for the job).
void set_log_rank(int rank, int world_size);

/// "rank N of W: " once set_log_rank() was called, "" otherwise; main() puts it in front of the
/// final error line.
const std::string& process_label();

}  // namespace attnrec
