#pragma once
/// \file Reading whole files and writing files safely.
///
/// Every file attnrec writes goes through AtomicFileWriter. A regular file (or a path that does
/// not exist yet) is written to a temporary file beside it and renamed into place, so a reader
/// or a crash sees either the old complete file or the new one. A path that names something
/// else that already exists — a character device such as /dev/null or /dev/full, a FIFO, a
/// socket — is written directly, since renaming over it would replace the node with a regular
/// file; "-" means standard output. Write errors are reported in every case (a full device is
/// an IoError naming the path, exit code 1).

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace attnrec {

/// Reads a whole file; throws IoError naming the path when it cannot be opened.
std::string read_file(const std::string& path);

/// Size of a regular file in bytes; throws IoError naming the path when it cannot be read.
std::uint64_t file_size(const std::string& path);

/// How a path is written.
enum class OutputKind {
  regular,  ///< a regular file or a new path: temporary file + rename
  direct,   ///< an existing non-regular file (device, FIFO): opened and written in place
  stdout_,  ///< "-": standard output
};

/// How `path` would be written; throws UsageError when it names a directory.
OutputKind output_kind(const std::string& path);

/// A file written through a buffer and committed by commit(). Regular targets: a temporary file
/// beside `path` (a symbolic link is followed, so the link stays), fsynced and renamed into
/// place; destroyed without commit(), it removes the temporary file and leaves `path`
/// untouched. Direct targets and "-": written in place. Errors are IoError "PATH: cannot ACTION
/// WHAT: reason".
class AtomicFileWriter {
 public:
  AtomicFileWriter(std::string path, std::string what = "file");
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  void write(std::string_view data);
  /// Bytes written so far (the position of the next write).
  std::uint64_t size() const { return written_ + buffer_.size(); }
  /// Replaces already written bytes at `offset` (same length; for headers whose values are
  /// known only after the body has been streamed). Regular targets only.
  void overwrite(std::uint64_t offset, std::string_view data);
  void commit();
  OutputKind kind() const { return kind_; }

 private:
  static constexpr std::size_t kBufferSize = 1 << 20;
  void flush_buffer();
  void write_raw(std::string_view data);
  void close_fd();
  [[noreturn]] void fail(const char* action, int error);

  std::string path_, what_, target_, tmp_;
  OutputKind kind_ = OutputKind::regular;
  int fd_ = -1;
  bool committed_ = false;
  std::string buffer_;
  std::uint64_t written_ = 0;  // bytes already handed to the file (excluding buffer_)
};

/// Writes the concatenation of `parts` to `path` through an AtomicFileWriter.
void write_file_atomic(const std::string& path, std::initializer_list<std::string_view> parts,
                       const std::string& what = "file");
inline void write_file_atomic(const std::string& path, std::string_view content) {
  write_file_atomic(path, {content});
}

/// ": REASON" (strerror) of the last failed system call, for messages about a stream whose
/// write failed (streams keep no reason): set errno to 0 before the writes; "" when it stayed 0.
std::string errno_reason();

}  // namespace attnrec
