#pragma once
/// \file Typed exceptions. Every user-facing failure is one of these; `main()` catches them once
/// and turns them into the documented exit codes.

#include <stdexcept>
#include <string>

namespace attnrec {

/// Process exit codes (documented in the README).
enum class ExitCode : int {
  ok = 0,
  runtime_failure = 1,  ///< I/O failures, numerical failures, internal errors.
  bad_input = 2,        ///< Bad usage, config, data or checkpoint: the user must change something.
  peer_failure = 3,     ///< Multi-process training: another process died, hung or disagreed.
  interrupted = 130,    ///< SIGINT.
  terminated = 143,     ///< SIGTERM.
};

/// Base class of all attnrec errors.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  /// The exit code a command returns when this error reaches `main()`.
  virtual ExitCode exit_code() const { return ExitCode::runtime_failure; }
};

/// Bad command-line usage (unknown flag value, missing argument).
class UsageError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const override { return ExitCode::bad_input; }
};

/// Invalid configuration: unknown key, wrong type, out-of-range value, conflicting options.
class ConfigError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const override { return ExitCode::bad_input; }
};

/// Invalid input data: malformed line, empty file, single-class labels.
class DataError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const override { return ExitCode::bad_input; }
};

/// A checkpoint or run directory that cannot be used (missing, corrupt, incompatible).
class CheckpointError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const override { return ExitCode::bad_input; }
};

/// A file could not be read or written for reasons outside the user's input (permissions, disk).
class IoError : public Error {
 public:
  using Error::Error;
};

/// Multi-process training: a collective or the rendezvous failed because another process died,
/// hung past train.distributed.timeout_s or never arrived (exit 3). The message names this
/// process's rank and the operation.
class PeerError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const override { return ExitCode::peer_failure; }
};

/// Training stopped by SIGINT/SIGTERM after writing a checkpoint (exit 130/143).
class Interrupted : public Error {
 public:
  Interrupted(const std::string& message, int signal) : Error(message), signal_(signal) {}
  ExitCode exit_code() const override {
    return signal_ == 15 ? ExitCode::terminated : ExitCode::interrupted;
  }

 private:
  int signal_;
};

}  // namespace attnrec
