#pragma once
/// \file Training progress: a live bar on a terminal, periodic log lines otherwise.
///
/// The bar is drawn on stderr (stdout carries results), fitted to the terminal's width on every
/// redraw (TIOCGWINSZ: the bar shrinks, then the line is cut), and always drawn as
/// "\r\033[K" + line, so it never wraps and never stacks copies. Log records go through
/// `bar_aware_sink()`, which clears the bar's line before the record and redraws the bar after
/// it. stderr that is not a terminal, or TERM=dumb, gets plain periodic log lines instead.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace spdlog::sinks {
class sink;
}

namespace attnrec {

/// Whether progress is drawn as a live bar: stderr is a terminal and TERM is not "dumb".
bool progress_bar_enabled();

/// The terminal's width in columns (stderr's TIOCGWINSZ, else $COLUMNS, else 80).
int terminal_columns();

/// Fits a bar line to `columns`: the bar (between '[' and ']') shrinks down to 5 cells, then
/// goes, then the line is cut to columns - 1 characters (never the last column, which would
/// make some terminals wrap).
std::string fit_progress_line(const std::string& before_bar, int bar_cells, double fraction,
                              const std::string& after_bar, int columns);

/// A sink that writes records to `inner` (the stderr sink), clearing the progress bar's line
/// first and redrawing it after.
std::shared_ptr<spdlog::sinks::sink> bar_aware_sink(std::shared_ptr<spdlog::sinks::sink> inner);

class Progress {
 public:
  /// `total` steps in this epoch; `first` is the step it starts from (after a resume).
  /// `log_every` steps between log lines when there is no bar.
  Progress(std::string label, std::int64_t total, std::int64_t first, std::int64_t log_every);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  /// Reports that `step` steps of the epoch are done.
  void update(std::int64_t step, double loss, double samples_per_second);
  /// Ends the bar's line (the last state of the bar stays on screen).
  void finish();
  /// Never draws a bar, even on a terminal: progress goes to info log lines only (the
  /// processes of a multi-process run other than rank 0, which log warnings only).
  void without_bar() { tty_ = false; }
  /// Progress of something other than training: no loss, the rate in `unit` per second.
  void counting(std::string unit) {
    unit_ = std::move(unit);
    show_loss_ = false;
  }

 private:
  std::string loss_text(double loss) const;

  std::string label_;
  std::int64_t total_, first_, log_every_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::string unit_ = "samples";
  bool show_loss_ = true;
};

/// "1:02:03" / "2:03".
std::string format_duration(double seconds);

}  // namespace attnrec
