#include "attnrec/util/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "attnrec/util/error.hpp"

namespace attnrec {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open for reading: " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw IoError(path + ": read failed");
  return buffer.str();
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw IoError(path + ": cannot read file status: " + std::strerror(errno));
  }
  return static_cast<std::uint64_t>(st.st_size);
}

OutputKind output_kind(const std::string& path) {
  if (path == "-") return OutputKind::stdout_;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return OutputKind::regular;  // new (or dangling link)
  if (S_ISDIR(st.st_mode)) throw UsageError(path + ": is a directory; name a file to write");
  return S_ISREG(st.st_mode) ? OutputKind::regular : OutputKind::direct;
}

AtomicFileWriter::AtomicFileWriter(std::string path, std::string what)
    : path_(std::move(path)), what_(std::move(what)) {
  kind_ = output_kind(path_);
  buffer_.reserve(kBufferSize);
  if (kind_ == OutputKind::stdout_) {
    std::fflush(stdout);  // keep what was printed through stdio before our bytes
    fd_ = STDOUT_FILENO;
    return;
  }
  if (kind_ == OutputKind::direct) {
    // Renaming over a device or FIFO would replace the node with a regular file: write to it.
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) throw IoError(path_ + ": cannot open " + what_ + ": " + std::strerror(errno));
    return;
  }
  // A symbolic link to a file is followed, so the link itself survives the rename.
  std::error_code ec;
  const bool link = fs::is_symlink(path_, ec);
  target_ = link && fs::exists(path_, ec) ? fs::canonical(path_, ec).string() : path_;
  if (target_.empty()) target_ = path_;
  const fs::path target(target_);
  // Same directory as the target so that rename() stays on one file system and is atomic.
  tmp_ = (target.parent_path() /
          ("." + target.filename().string() + ".tmp" + std::to_string(::getpid())))
             .string();
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(path_ + ": cannot create " + what_ + ": " + std::strerror(errno));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (committed_) return;
  close_fd();
  if (kind_ == OutputKind::regular && !tmp_.empty()) ::unlink(tmp_.c_str());
}

void AtomicFileWriter::close_fd() {
  if (fd_ >= 0 && fd_ != STDOUT_FILENO) ::close(fd_);
  fd_ = -1;
}

void AtomicFileWriter::fail(const char* action, int error) {
  close_fd();
  if (kind_ == OutputKind::regular) ::unlink(tmp_.c_str());
  committed_ = true;  // nothing left for the destructor to undo
  throw IoError(path_ + ": cannot " + action + " " + what_ + ": " + std::strerror(error));
}

void AtomicFileWriter::write(std::string_view data) {
  if (buffer_.size() + data.size() <= kBufferSize) {
    buffer_.append(data);
    return;
  }
  flush_buffer();
  if (data.size() >= kBufferSize) {
    write_raw(data);
  } else {
    buffer_.append(data);
  }
}

void AtomicFileWriter::flush_buffer() {
  write_raw(buffer_);
  buffer_.clear();
}

void AtomicFileWriter::overwrite(std::uint64_t offset, std::string_view data) {
  if (kind_ != OutputKind::regular) {
    throw UsageError(path_ + ": a " + what_ + " can only be written to a regular file");
  }
  if (offset + data.size() > size()) {
    throw std::logic_error("AtomicFileWriter::overwrite past the written bytes");
  }
  flush_buffer();
  const char* p = data.data();
  std::size_t left = data.size();
  auto at = static_cast<off_t>(offset);
  while (left > 0) {
    const ssize_t n = ::pwrite(fd_, p, left, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write", errno);
    p += n;
    at += n;
    left -= static_cast<std::size_t>(n);
  }
}

void AtomicFileWriter::write_raw(std::string_view data) {
  if (fd_ < 0) throw std::logic_error("AtomicFileWriter: write after commit");
  written_ += data.size();
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write", errno);
    if (n == 0) fail("write", EIO);
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  flush_buffer();
  if (kind_ != OutputKind::regular) {
    // Devices and FIFOs have nothing to rename; a failing close still means lost data.
    if (fd_ != STDOUT_FILENO && ::close(fd_) != 0) {
      const int e = errno;
      fd_ = -1;
      fail("write", e);
    }
    fd_ = -1;
    committed_ = true;
    return;
  }
  if (::fsync(fd_) != 0) fail("flush", errno);
  if (::close(fd_) != 0) {
    const int e = errno;
    fd_ = -1;
    fail("write", e);
  }
  fd_ = -1;
  if (std::rename(tmp_.c_str(), target_.c_str()) != 0) fail("move into place", errno);
  committed_ = true;
  // Make the rename itself durable.
  const fs::path parent = fs::path(target_).parent_path();
  const int dir = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void write_file_atomic(const std::string& path, std::initializer_list<std::string_view> parts,
                       const std::string& what) {
  AtomicFileWriter out(path, what);
  for (const auto part : parts) out.write(part);
  out.commit();
}

std::string errno_reason() {
  const int err = errno;
  return err != 0 ? std::string(": ") + std::strerror(err) : std::string();
}

}  // namespace attnrec
