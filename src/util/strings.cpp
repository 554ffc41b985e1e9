#include "attnrec/util/strings.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <fcntl.h>
#include <unistd.h>

#include "attnrec/util/error.hpp"

namespace attnrec {

bool parse_int64(std::string_view text, std::int64_t& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool parse_double(std::string_view text, double& out) {
  // from_chars for double is missing from GCC 10 and older; strtod needs a terminated string.
  if (text.empty() || text.size() > 64) return false;
  char buffer[65];
  text.copy(buffer, text.size());
  buffer[text.size()] = '\0';
  char* end = nullptr;
  out = std::strtod(buffer, &end);
  return end == buffer + text.size() && std::isfinite(out) && !std::isspace(buffer[0]);
}


void split(std::string_view text, char sep, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t start = 0;
  while (true) {
    const std::size_t pos = text.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(text.substr(start));
      return;
    }
    out.push_back(text.substr(start, pos - start));
    start = pos + 1;
  }
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    const std::size_t d = edit_distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open for reading: " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw IoError(path + ": read failed");
  return buffer.str();
}

AtomicFileWriter::AtomicFileWriter(std::string path, std::string what)
    : path_(std::move(path)), what_(std::move(what)) {
  namespace fs = std::filesystem;
  const fs::path target(path_);
  // Same directory as the target so that rename() stays on one file system and is atomic.
  tmp_ = (target.parent_path() /
          ("." + target.filename().string() + ".tmp" + std::to_string(::getpid())))
             .string();
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(path_ + ": cannot create " + what_ + ": " + std::strerror(errno));
  buffer_.reserve(kBufferSize);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {  // not committed: leave the target untouched
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFileWriter::fail(const char* action, int error) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
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
  written_ += data.size();
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write", errno);
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  flush_buffer();
  if (::fsync(fd_) != 0) fail("flush", errno);
  ::close(fd_);
  fd_ = -1;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp_.c_str());
    throw IoError(path_ + ": cannot move into place " + what_ + ": " + std::strerror(e));
  }
  // Make the rename itself durable.
  const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
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

}  // namespace attnrec
