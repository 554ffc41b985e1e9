// attnrec command-line entry point: parse, run one subcommand, map errors to exit codes.
// Exit codes: 0 ok; 1 runtime failure (I/O, numerical, internal); 2 bad usage, config, data or
// checkpoint; 3 another process of a multi-process run failed; 130/143 interrupted by
// SIGINT/SIGTERM.

#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <cstdlib>

#include "attnrec/dist/data_parallel.hpp"
#include "attnrec/util/device.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/libstdcxx.hpp"
#include "attnrec/util/logging.hpp"
#include "attnrec/util/strings.hpp"
#include "commands.hpp"

namespace {

/// Thread policy, part 1 (part 2 is attnrec::configure_threads): OpenMP threads wait passively.
/// libgomp's default spin-wait keeps idle workers busy between parallel regions; when another
/// process wants a core they steal its time slices: measured with one competing CPU-bound
/// process on 2 cores, `attnrec bench` trained at 2,162 samples/s with the default policy,
/// 3,710 with OMP_WAIT_POLICY=PASSIVE (5,988 without competition). libgomp reads the variable
/// when it is loaded, before main(), so setting it here is too late for this process: compute
/// commands re-execute themselves once with it set (~1 s of start-up). A value the user
/// exported wins and skips the re-execution (OMP_WAIT_POLICY=ACTIVE for dedicated machines).
void ensure_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/1);
  ::execv("/proc/self/exe", argv);
  // Only reached if exec failed (no /proc): carry on with libgomp's default policy.
}

}  // namespace

int main(int argc, char** argv) {
  using attnrec::ExitCode;
  // A build whose std::filesystem calls bind into LibTorch's copies would crash: run again with
  // the system's libstdc++ first (see util/libstdcxx.hpp).
  if (attnrec::prefer_system_libstdcxx()) ::execv("/proc/self/exe", argv);
  // LibTorch frees and reallocates the same multi-megabyte temporaries every step. With glibc's
  // defaults those go to mmap/munmap (or the heap is trimmed), so every step page-faults its
  // memory in again: measured 614 s of system time in an 8-minute full-ranking evaluation.
  // Keeping freed memory in the process costs nothing in peak RSS.
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum on 64-bit
  ::mallopt(M_TRIM_THRESHOLD, 512 << 20);
  CLI::App app{"attnrec: train, evaluate and serve attention-based click-prediction models",
               "attnrec"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] {
    return fmt::format("attnrec {}\n{}; {}", ATTNREC_VERSION, attnrec::describe_build(),
                       attnrec::describe_process_groups());
  });
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return fmt::format("error: {}\nRun with --help for more information.\n", e.what());
  });

  attnrec::cli::Commands commands;
  attnrec::cli::add_config_command(app, commands);
  attnrec::cli::add_generate_command(app, commands);
  attnrec::cli::add_preprocess_command(app, commands);
  attnrec::cli::add_check_data_command(app, commands);
  attnrec::cli::add_train_command(app, commands);
  attnrec::cli::add_evaluate_command(app, commands);
  attnrec::cli::add_predict_command(app, commands);
  attnrec::cli::add_recommend_command(app, commands);
  attnrec::cli::add_export_command(app, commands);
  attnrec::cli::add_report_command(app, commands);
  attnrec::cli::add_explain_command(app, commands);
  attnrec::cli::add_inspect_command(app, commands);
  attnrec::cli::add_bench_command(app, commands);

  // Arguments end up in JSON files (metrics, configs, summaries), which hold only UTF-8 text.
  for (int i = 1; i < argc; ++i) {
    if (!attnrec::is_valid_utf8(argv[i])) {
      fmt::print(stderr,
                 "error: command-line argument {} is not valid UTF-8 text; attnrec "
                 "records its arguments in JSON files, so paths and values must be UTF-8\n",
                 i);
      return static_cast<int>(ExitCode::bad_input);
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, version or the error
    return code == 0 ? 0 : static_cast<int>(ExitCode::bad_input);
  }
  for (const auto& command : commands) {
    const auto& name = command.app->get_name();
    if (command.app->parsed() && (name == "train" || name == "evaluate" || name == "predict" ||
                                  name == "bench" || name == "recommend")) {
      ensure_passive_openmp(argv);
    }
  }
  try {
    attnrec::init_logging(log_level);
    for (const auto& command : commands) {
      if (command.app->parsed()) return command.run();
    }
    return static_cast<int>(ExitCode::bad_input);
  } catch (const attnrec::Error& e) {
    fmt::print(stderr, "error: {}{}\n", attnrec::process_label(), e.what());
    return static_cast<int>(e.exit_code());
  } catch (const c10::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what_without_backtrace());
    return static_cast<int>(ExitCode::runtime_failure);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: internal error: {}\n", e.what());
    return static_cast<int>(ExitCode::runtime_failure);
  }
}
