#pragma once
/// \file An exclusive lock on a run directory, so two trainings never write into the same one.

#include <string>

namespace attnrec {

/// Holds `DIR/.lock` (flock) for its lifetime; once announce()d, the file records the holder's
/// pid and host. The kernel drops the lock when the process dies, so a crashed run never leaves
/// a stale lock.
class RunLock {
 public:
  /// Throws UsageError naming the other process when the directory is locked. `announce`:
  /// write this process into the file now (false: the file is not changed until announce(),
  /// so a command that fails its checks leaves the run directory as it was).
  explicit RunLock(const std::string& dir, bool announce = true);
  /// Records this process (pid, host) in the lock file.
  void announce();
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace attnrec
