#pragma once
/// \file An exclusive lock on a run directory, so two trainings never write into the same one.

#include <string>

namespace attnrec {

/// Holds `DIR/.lock` (flock) for its lifetime; the file records the holder's pid and host. The
/// kernel drops the lock when the process dies, so a crashed run never leaves a stale lock.
class RunLock {
 public:
  /// Throws UsageError naming the other process when the directory is locked.
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace attnrec
