// The progress bar: fitted to the terminal (the bar shrinks, then the line is cut), and in a
// real terminal (tmux at 80 and 130 columns) one row per epoch, never wrapped or stacked, with
// log records printed on rows of their own.

#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <thread>

#include "attnrec/util/progress.hpp"
#include "cli_data.hpp"
#include "support.hpp"

using namespace attnrec;
using namespace attnrec::test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

TEST_CASE("progress: the line fits the terminal, the bar shrinks first", "[progress]") {
  const std::string before = "epoch 1/2    120/900";
  const std::string after = " 13% loss 0.6931 51234 samples/s ETA 0:07";
  // Wide: the whole bar (30 cells), a quarter filled.
  CHECK(fit_progress_line(before, 30, 0.25, after, 130) ==
        before + " [=======                       ] " + after);
  // 80 columns: the bar shrinks so that the line takes 79 characters.
  const auto narrow = fit_progress_line(before, 30, 0.5, after, 80);
  CHECK(narrow.size() == 79);
  CHECK_THAT(narrow, StartsWith(before + " [=======       ] "));  // 14 cells
  // Too narrow for 5 cells: no bar, then the line is cut.
  CHECK(fit_progress_line(before, 30, 0.5, after, 66) == before + " " + after);
  CHECK(fit_progress_line(before, 30, 0.5, after, 50) == (before + " " + after).substr(0, 49));
  CHECK(fit_progress_line(before, 30, 1.0, after, 20) == before.substr(0, 19));
  CHECK(fit_progress_line("x", 30, 2.0, "y", 1).size() == 1);  // never empty, never negative
}

namespace {

std::string tmux(const std::string& socket, const std::string& args) {
  TempDir dir;
  const std::string out = dir.file("out");
  const std::string command =
      "tmux -L '" + socket + "' -f /dev/null " + args + " >'" + out + "' 2>&1";
  if (std::system(command.c_str()) != 0) FAIL("tmux " << args << ": " << read_text(out));
  return read_text(out);
}

std::vector<std::string> rows_of(const std::string& text) {
  std::vector<std::string> rows;
  std::istringstream in(text);
  for (std::string row; std::getline(in, row);) rows.push_back(row);
  return rows;
}

/// Trains in a tmux pane `columns` wide and returns every row the pane showed (scrollback too).
std::vector<std::string> train_in_tmux(const TempDir& dir, const std::string& data, int columns) {
  const std::string socket =
      "attnrec-test-" + std::to_string(::getpid()) + "-" + std::to_string(columns);
  const std::string script =
      write_text(dir.file("train" + std::to_string(columns) + ".sh"),
                 "cd '" + dir.path().string() + "'\nOMP_WAIT_POLICY=PASSIVE '" + binary_path() +
                     "' train --config '" + source_path("configs/default.json") +
                     "' --run-dir run" + std::to_string(columns) + " --set data.train='" + data +
                     "/train_positives.tsv' --set data.valid='" + data +
                     "/valid.tsv' --set data.test= --set train.epochs=2 --set train.batch_size=8 "
                     "--set train.threads=1 --set train.validate_every_steps=150 "
                     "--set train.early_stopping.patience=0 --set train.tensorboard=false\n"
                     "echo __DONE__ $?\n");
  tmux(socket,
       "new-session -d -s p -x " + std::to_string(columns) + " -y 40 'bash --norc --noprofile'");
  tmux(socket, "set-option -t p history-limit 5000");
  tmux(socket, "send-keys -t p 'bash " + script + "' Enter");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  std::string pane;
  for (;;) {
    pane = tmux(socket, "capture-pane -p -t p -S -");
    if (pane.find("__DONE__") != std::string::npos) break;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::system(("tmux -L '" + socket + "' kill-server >/dev/null 2>&1").c_str());
  INFO(pane);
  REQUIRE_THAT(pane, Contains("__DONE__ 0"));
  return rows_of(pane);
}

}  // namespace

TEST_CASE("progress: in tmux at 80 and 130 columns, one bar row per epoch, logs on own rows",
          "[progress][cli]") {
  if (std::system("tmux -V >/dev/null 2>&1") != 0) {
    WARN("SKIPPED: tmux is not installed (apt-get install tmux)");
    return;
  }
  TempDir dir;
  const auto log = dir.file("ratings.dat");
  REQUIRE(run_cli("--log-level warn generate --log '" + log +
                  "' --log-users 200 --log-items 400 --max-events 40 --seed 5")
              .code == 0);
  const auto data = dir.file("prepared");
  REQUIRE(run_cli("--log-level warn preprocess -i '" + log + "' -o '" + data +
                  "' --min-rating 1 --ranking-negatives 10")
              .code == 0);
  for (const int columns : {80, 130}) {
    const auto rows = train_in_tmux(dir, data, columns);
    std::string shown;
    for (const auto& row : rows) shown += row + "\n";
    INFO(columns << " columns:\n" << shown);
    int bars[2] = {0, 0}, records = 0;
    for (const auto& row : rows) {
      const bool bar = row.find(" ETA ") != std::string::npos;
      if (bar) {
        CHECK(static_cast<int>(row.size()) < columns);  // never reaches the last column
        // A whole bar row: it starts the row, and shows a bar of at least 5 cells.
        CHECK((row.rfind("epoch 1/2 ", 0) == 0 || row.rfind("epoch 2/2 ", 0) == 0));
        CHECK(row.find("] ") >= row.find(" [") + 7);
        ++bars[row.rfind("epoch 2/2 ", 0) == 0 ? 1 : 0];
      }
      if (row.find("] [info] ") != std::string::npos) {
        ++records;
        CHECK_FALSE(bar);
        CHECK(row.rfind("[20", 0) == 0);  // a record starts its row (with its time stamp)
      }
    }
    CHECK(bars[0] == 1);  // one row per epoch: redraws never stacked copies
    CHECK(bars[1] == 1);
    CHECK(records >= 4);  // including the validations in the middle of each epoch
  }
}
