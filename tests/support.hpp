#pragma once
// Test helpers: temporary directories, small files, and running the real attnrec binary.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "attnrec/util/hash.hpp"
#include "test_paths.hpp"

namespace attnrec::test {

/// SHA-256 of every regular file under `dir` (relative path -> hash).
inline std::map<std::string, std::string> tree_hashes(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) {
      out[e.path().lexically_relative(dir).string()] = attnrec::sha256_file(e.path().string());
    }
  }
  return out;
}

/// Creates the character device node MAJOR:MINOR at `path` (1:3 null, 1:7 full) so that a
/// test never writes to the machine's /dev. Returns "" when it can be opened for writing, else
/// why not (the caller skips with that message).
inline std::string make_device_node(const std::string& path, unsigned major, unsigned minor) {
  if (::mknod(path.c_str(), S_IFCHR | 0600, makedev(major, minor)) != 0) {
    return "cannot create device nodes here (mknod needs CAP_MKNOD): " +
           std::string(std::strerror(errno));
  }
  const int probe = ::open(path.c_str(), O_WRONLY);
  if (probe < 0) {
    return "the device nodes cannot be opened here: " + std::string(std::strerror(errno));
  }
  ::close(probe);
  return "";
}

/// A fresh directory removed at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "attnrec-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::string write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The JSON objects of a JSON-lines file, in order.
inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> rows;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  }
  return rows;
}

inline std::string source_path(const std::string& relative) {
  return std::string(ATTNREC_TEST_SOURCE_DIR) + "/" + relative;
}

/// The first Python interpreter that imports `modules` (e.g. "torch, numpy"): ATTNREC_PYTHON
/// when set, then `candidates` in order; empty when none does.
inline std::string python_that_imports(const std::string& modules,
                                       std::vector<std::string> candidates) {
  if (const char* env = std::getenv("ATTNREC_PYTHON")) candidates.insert(candidates.begin(), env);
  for (const auto& python : candidates) {
    if (!std::filesystem::exists(python)) continue;
    const std::string probe = "'" + python + "' -c 'import " + modules + "' >/dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) return python;
  }
  return "";
}

/// The attnrec binary, built next to the test executable.
inline std::string binary_path() {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "attnrec").string();
}

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

/// run_cli with `env ENV` in front (ENV is env(1) syntax: "-u NAME", "NAME=value").
inline CliResult run_cli_env(const std::string& env, const std::string& args) {
  TempDir dir;
  const std::string out = dir.file("stdout"), err = dir.file("stderr");
  const std::string command =
      "env " + env + " '" + binary_path() + "' " + args + " >'" + out + "' 2>'" + err + "'";
  const int status = std::system(command.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out);
  r.err = read_text(err);
  return r;
}

/// Runs `attnrec ARGS` through the shell (ARGS is shell syntax) and captures both streams.
inline CliResult run_cli(const std::string& args) { return run_cli_env("", args); }

/// Starts `argv` (argv[0] found on PATH) with `env` (NAME, value) added to its environment,
/// stdout and stderr to the given files; returns its pid.
inline pid_t spawn_program(std::vector<std::string> argv,
                           const std::vector<std::pair<std::string, std::string>>& env,
                           const std::string& out, const std::string& err) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
    std::freopen(out.c_str(), "w", stdout);
    std::freopen(err.c_str(), "w", stderr);
    std::vector<char*> raw;
    for (auto& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    ::execvp(raw[0], raw.data());
    ::_exit(127);
  }
  return pid;
}

/// spawn_cli with `env` (NAME, value) set in the child's environment.
inline pid_t spawn_cli_env(const std::vector<std::pair<std::string, std::string>>& env,
                           const std::vector<std::string>& args, const std::string& out,
                           const std::string& err) {
  std::vector<std::string> argv = {binary_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return spawn_program(argv, env, out, err);
}

/// Starts `attnrec ARGS...` without a shell, stdout/stderr to the given files; returns its pid.
inline pid_t spawn_cli(const std::vector<std::string>& args, const std::string& out,
                       const std::string& err) {
  return spawn_cli_env({}, args, out, err);
}

/// Polls `pid` until it exits or `deadline` passes: its exit code (128 + signal when a signal
/// ended it), or -1 at the deadline (the process is left running).
inline int wait_cli_until(pid_t pid, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

/// Waits for `pid`; its exit code, or 128 + signal when a signal ended it.
inline int wait_cli(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace attnrec::test
