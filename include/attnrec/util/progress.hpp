#pragma once
/// \file Training progress: a live bar on a terminal, periodic log lines otherwise.

#include <chrono>
#include <cstdint>
#include <string>

namespace attnrec {

class Progress {
 public:
  /// `total` steps in this epoch; `first` is the step it starts from (after a resume).
  /// `log_every` steps between log lines when stdout is not a terminal.
  Progress(std::string label, std::int64_t total, std::int64_t first, std::int64_t log_every);
  /// Reports that `step` steps of the epoch are done.
  void update(std::int64_t step, double loss, double samples_per_second);
  /// Ends the bar's line.
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
  bool drawn_ = false;
  std::string unit_ = "samples";
  bool show_loss_ = true;
};

/// "1:02:03" / "2:03".
std::string format_duration(double seconds);

}  // namespace attnrec
