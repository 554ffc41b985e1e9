#include "attnrec/util/progress.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <cstdio>

namespace attnrec {

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
      tty_(::isatty(STDOUT_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void Progress::update(std::int64_t step, double loss, double samples_per_second) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = step > first_ ? elapsed / static_cast<double>(step - first_) : 0.0;
  const double eta = rate * static_cast<double>(total_ - step);
  if (tty_) {
    // Redraw at most 5 times a second: drawing is host work inside the training loop.
    if (step < total_ && std::chrono::duration<double>(now - last_draw_).count() < 0.2) return;
    last_draw_ = now;
    constexpr int kWidth = 30;
    const int filled = total_ > 0 ? static_cast<int>(kWidth * step / total_) : kWidth;
    fmt::print("\r{} {:>6}/{} [{}{}] {:3}% {}{:.0f} {}/s ETA {}  ", label_, step, total_,
               std::string(filled, '='), std::string(kWidth - filled, ' '),
               total_ > 0 ? 100 * step / total_ : 100, loss_text(loss), samples_per_second, unit_,
               format_duration(eta));
    std::fflush(stdout);
    drawn_ = true;
  } else if (step % log_every_ == 0 || step == total_) {
    spdlog::info("{} step {}/{} {}{:.0f} {}/s ETA {}", label_, step, total_, loss_text(loss),
                 samples_per_second, unit_, format_duration(eta));
  }
}

std::string Progress::loss_text(double loss) const {
  return show_loss_ ? fmt::format("loss {:.4f} ", loss) : std::string();
}

void Progress::finish() {
  if (tty_ && drawn_) {
    fmt::print("\n");
    std::fflush(stdout);
  }
}

}  // namespace attnrec
