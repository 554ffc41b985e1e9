#include "attnrec/util/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <string>

#include "attnrec/util/error.hpp"

namespace attnrec {

RunLock::RunLock(const std::string& dir, bool announce_now) {
  const std::string path = dir + "/.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(path + ": cannot create lock file: " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char buffer[256] = {0};
    const ssize_t n = ::pread(fd_, buffer, sizeof(buffer) - 1, 0);
    std::string holder = n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "unknown";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(fd_);
    fd_ = -1;
    throw UsageError(dir + ": another attnrec process is training in this run directory (" +
                     holder + "); wait for it to finish or use another --run-dir");
  }
  if (announce_now) announce();
}

void RunLock::announce() {
  char host[128] = {0};
  ::gethostname(host, sizeof(host) - 1);
  const std::string info = "pid " + std::to_string(::getpid()) + " on " + host + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t w = ::pwrite(fd_, info.data(), info.size(), 0);
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace attnrec
