#pragma once
/// \file The interaction-log formats `attnrec preprocess` reads, each a parser chosen once per
/// run: line -> interactions | error. Plus the hashing line reader every format is read
/// through, and format detection.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "attnrec/data/preprocess.hpp"
#include "attnrec/util/hash.hpp"

namespace attnrec {

/// One interaction of a log line. The views point into the line or into the parser, and are
/// valid until the parser's next call.
struct LogRecord {
  std::string_view user, item, category, behavior;
  std::int64_t time = 0;
  bool has_time = false;
  bool has_rating = false;
  double rating = 0;
};

/// A log format.
class LogParser {
 public:
  virtual ~LogParser() = default;
  /// Parses one non-blank line into `out` (cleared first; a sequence line holds many
  /// interactions). Returns "" or what is wrong with the line.
  virtual std::string parse(std::string_view line, std::vector<LogRecord>& out) = 0;
  /// The first line names the columns (csv with a header): handed to header() instead.
  virtual bool reads_header() const { return false; }
  virtual void header(std::string_view line) { (void)line; }
  /// Records carry ratings (--min-rating applies) / behaviours (--behaviors applies).
  virtual bool has_ratings() const = 0;
  virtual bool has_behaviors() const { return false; }
  /// Records without a time are ordered by their position in the user's sequence (sequence
  /// format) rather than by line number.
  virtual bool times_are_positions() const { return false; }
};

/// The parser of `format` (not automatic), configured by `options` (csv columns, delimiter).
/// Throws UsageError for an impossible csv mapping.
std::unique_ptr<LogParser> make_log_parser(LogFormat format, const PreprocessOptions& options);

/// Reads a file line by line through a large buffer and hashes the exact bytes on the way, so
/// the input is read once for both. Lines may end in \n or \r\n.
class LineReader {
 public:
  explicit LineReader(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;
  /// The next line without its end, or false at the end of the file.
  bool next(std::string_view& line);
  std::int64_t line_number() const { return line_number_; }
  std::int64_t bytes() const { return bytes_; }
  std::string sha256() { return hash_.hex(); }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<char> buffer_;
  std::size_t pos_ = 0, end_ = 0;
  std::string carry_, line_store_;
  bool carry_used_ = false;
  std::int64_t line_number_ = 0;
  std::int64_t bytes_ = 0;
  Sha256 hash_;
};

}  // namespace attnrec
