#pragma once
/// \file Small string helpers shared by config parsing and data readers.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace attnrec {

/// Splits `text` at every `sep`; empty fields are kept ("a,,b" -> {"a", "", "b"}).
/// The views point into `text`. `out` is cleared first and reused to avoid allocations.
void split(std::string_view text, char sep, std::vector<std::string_view>& out);

/// Parses a whole field as a base-10 integer (optional leading '-'); false on anything else.
bool parse_int64(std::string_view text, std::int64_t& out);
/// Parses a whole field as a finite decimal number; false on anything else.
bool parse_double(std::string_view text, double& out);

/// Levenshtein edit distance (insertions, deletions, substitutions cost 1).
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` by edit distance, if it is close enough to be a plausible
/// typo (distance <= max(2, |word| / 3)). Used for "did you mean" hints.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

/// Joins `items` with `sep`.
std::string join(const std::vector<std::string>& items, std::string_view sep);

/// Reads a whole file; throws IoError naming the path when it cannot be opened.
std::string read_file(const std::string& path);

/// A file written through a buffer into a temporary file beside `path` and moved into place by
/// commit() (fsync, rename, directory fsync). Destroyed without commit(), it removes the
/// temporary file and leaves `path` untouched. Errors are IoError "PATH: cannot ACTION WHAT".
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
  /// known only after the body has been streamed).
  void overwrite(std::uint64_t offset, std::string_view data);
  void commit();

 private:
  static constexpr std::size_t kBufferSize = 1 << 20;
  void flush_buffer();
  void write_raw(std::string_view data);
  [[noreturn]] void fail(const char* action, int error);

  std::string path_, what_, tmp_;
  int fd_ = -1;
  std::string buffer_;
  std::uint64_t written_ = 0;  // bytes already handed to the file (excluding buffer_)
};

/// Writes the concatenation of `parts` to `path` atomically: a temporary file in the same
/// directory, fsynced, renamed over `path`, then the directory fsynced. On failure the temporary
/// file is removed, `path` is untouched, and an IoError says "PATH: cannot write WHAT: reason".
void write_file_atomic(const std::string& path, std::initializer_list<std::string_view> parts,
                       const std::string& what = "file");
inline void write_file_atomic(const std::string& path, std::string_view content) {
  write_file_atomic(path, {content});
}

}  // namespace attnrec
