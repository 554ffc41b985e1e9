#pragma once
/// \file Reading tab-separated files line by line (the one loop every small-file reader
/// shares): "\r\n" line ends, fields split on tabs, line numbers and the file's name in every
/// error. And RFC 4180 CSV fields, for logs whose values are quoted.

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace attnrec {

class TsvReader {
 public:
  /// Opens `path`; a DataError "PATH: cannot open WHAT" when it cannot.
  TsvReader(const std::string& path, const std::string& what);
  /// Reads the next line; false at the end of the file.
  bool next();
  /// The current line's tab-separated fields (views valid until the next call).
  const std::vector<std::string_view>& fields() const { return fields_; }
  /// The current line without its end.
  std::string_view line() const { return line_; }
  /// 1-based number of the current line.
  std::int64_t line_number() const { return line_number_; }
  const std::string& path() const { return path_; }
  /// Reads line 1 and checks its first fields are `names` (all of them, and nothing more when
  /// `exact`); a DataError "PATH:1: expected the header "a<TAB>b..."[ DESCRIPTION]" otherwise.
  void expect_header(const std::vector<std::string>& names, bool exact,
                     const std::string& description = "");
  /// Throws DataError "PATH:LINE: message".
  [[noreturn]] void fail(const std::string& message) const;

 private:
  std::string path_;
  std::ifstream in_;
  std::string buffer_;
  std::string_view line_;
  std::vector<std::string_view> fields_;
  std::int64_t line_number_ = 0;
};

/// Splits one CSV record (RFC 4180): fields separated by `delimiter`; a field may be quoted
/// with '"', may then hold the delimiter, and writes a quote as '""'. Returns an empty string
/// on success, else what is wrong (a quote inside an unquoted field, text after a closing
/// quote, an unterminated quote — records spanning lines are not supported).
std::string split_csv(std::string_view line, char delimiter, std::vector<std::string>& out);

}  // namespace attnrec
