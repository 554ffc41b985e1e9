#pragma once
// Shared pieces of the libFuzzer harnesses (built by scripts/fuzz.sh, never by the default
// build): a per-process scratch folder, the input written to a file there (the readers take
// paths, as the CLI gives them), and the one rule every harness checks: bad input may only end
// in one of attnrec's typed errors (what the CLI prints as a clear message with exit code 2 or
// 1); any other exception is a defect and aborts, so that libFuzzer saves the input.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include <spdlog/spdlog.h>

#include "attnrec/util/error.hpp"
#include "attnrec/util/logging.hpp"

namespace attnrec::fuzz {

/// /tmp/attnrec-fuzz-PID/, created once, emptied of nothing (each harness overwrites its files).
inline const std::string& scratch() {
  static const std::string dir = [] {
    const auto d = std::filesystem::temp_directory_path() /
                   ("attnrec-fuzz-" + std::to_string(static_cast<long>(getpid())));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  return dir;
}

inline std::string write_input(const std::string& name, const std::uint8_t* data,
                               std::size_t size) {
  const std::string path = scratch() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

/// Runs `f`; attnrec's typed errors are the expected outcome of bad input, anything else aborts.
template <typename F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const attnrec::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "DEFECT: an exception that is not an attnrec error: %s\n", e.what());
    std::abort();
  }
}

/// Quiet logging, once.
inline void quiet() {
  static const bool done = [] {
    attnrec::init_logging("off");
    spdlog::default_logger()->set_level(spdlog::level::off);
    return true;
  }();
  (void)done;
}

}  // namespace attnrec::fuzz
