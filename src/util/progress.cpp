#include "attnrec/util/progress.hpp"

#include <fmt/format.h>
#include <spdlog/sinks/sink.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace attnrec {

namespace {

/// The bar on screen, shared by the Progress that draws it and the sink that clears and
/// redraws it around log records.
struct BarLine {
  std::mutex mutex;
  bool on_screen = false;
  std::string before, after;
  int cells = 30;
  double fraction = 0.0;

  /// Draws the bar over the current line (caller holds the mutex).
  void draw() const {
    const std::string line = fit_progress_line(before, cells, fraction, after, terminal_columns());
    std::fputs("\r\033[K", stderr);
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
  }
};

BarLine& bar_line() {
  static BarLine line;
  return line;
}

class BarAwareSink final : public spdlog::sinks::sink {
 public:
  explicit BarAwareSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}
  void log(const spdlog::details::log_msg& msg) override {
    BarLine& bar = bar_line();
    std::lock_guard<std::mutex> lock(bar.mutex);
    if (bar.on_screen) {
      std::fputs("\r\033[K", stderr);
      std::fflush(stderr);
    }
    inner_->log(msg);
    inner_->flush();
    if (bar.on_screen) bar.draw();
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

bool progress_bar_enabled() {
  if (::isatty(STDERR_FILENO) != 1) return false;
  const char* term = std::getenv("TERM");
  return !(term && std::strcmp(term, "dumb") == 0);
}

int terminal_columns() {
  struct winsize size {};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  if (const char* columns = std::getenv("COLUMNS")) {
    const int n = std::atoi(columns);
    if (n > 0) return n;
  }
  return 80;
}

std::string fit_progress_line(const std::string& before_bar, int bar_cells, double fraction,
                              const std::string& after_bar, int columns) {
  const int room = std::max(1, columns - 1);
  const int fixed = static_cast<int>(before_bar.size() + after_bar.size()) + 4;  // " [" "] "
  const int cells = std::min(bar_cells, room - fixed);
  std::string line;
  if (cells >= 5) {
    const int filled = std::clamp(static_cast<int>(cells * fraction), 0, cells);
    line = before_bar + " [" + std::string(filled, '=') + std::string(cells - filled, ' ') + "] " +
           after_bar;
  } else {
    line = before_bar + " " + after_bar;
  }
  if (static_cast<int>(line.size()) > room) line.resize(room);
  return line;
}

std::shared_ptr<spdlog::sinks::sink> bar_aware_sink(std::shared_ptr<spdlog::sinks::sink> inner) {
  return std::make_shared<BarAwareSink>(std::move(inner));
}

std::string format_duration(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

Progress::Progress(std::string label, std::int64_t total, std::int64_t first,
                   std::int64_t log_every)
    : label_(std::move(label)),
      total_(total),
      first_(first),
      log_every_(log_every),
      tty_(progress_bar_enabled()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::update(std::int64_t step, double loss, double samples_per_second) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = step > first_ ? elapsed / static_cast<double>(step - first_) : 0.0;
  const double eta = rate * static_cast<double>(total_ - step);
  if (tty_) {
    // Redraw at most 5 times a second: drawing is host work inside the training loop.
    if (step < total_ && std::chrono::duration<double>(now - last_draw_).count() < 0.2) return;
    last_draw_ = now;
    BarLine& bar = bar_line();
    std::lock_guard<std::mutex> lock(bar.mutex);
    bar.before = fmt::format("{} {:>6}/{}", label_, step, total_);
    bar.after = fmt::format("{:3}% {}{:.0f} {}/s ETA {}", total_ > 0 ? 100 * step / total_ : 100,
                            loss_text(loss), samples_per_second, unit_, format_duration(eta));
    bar.fraction = total_ > 0 ? static_cast<double>(step) / static_cast<double>(total_) : 1.0;
    bar.on_screen = true;
    bar.draw();
  } else if (step % log_every_ == 0 || step == total_) {
    spdlog::info("{} step {}/{} {}{:.0f} {}/s ETA {}", label_, step, total_, loss_text(loss),
                 samples_per_second, unit_, format_duration(eta));
  }
}

std::string Progress::loss_text(double loss) const {
  return show_loss_ ? fmt::format("loss {:.4f} ", loss) : std::string();
}

void Progress::finish() {
  if (!tty_) return;
  BarLine& bar = bar_line();
  std::lock_guard<std::mutex> lock(bar.mutex);
  if (!bar.on_screen) return;
  std::fputs("\n", stderr);
  std::fflush(stderr);
  bar.on_screen = false;
}

}  // namespace attnrec
