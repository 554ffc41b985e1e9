#include "attnrec/data/tsv.hpp"

#include <fmt/format.h>

#include "attnrec/util/error.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

TsvReader::TsvReader(const std::string& path, const std::string& what)
    : path_(path), in_(path, std::ios::binary) {
  if (!in_) throw DataError(path + ": cannot open " + what);
}

bool TsvReader::next() {
  if (!std::getline(in_, buffer_)) return false;
  ++line_number_;
  line_ = buffer_;
  if (!line_.empty() && line_.back() == '\r') line_.remove_suffix(1);
  split(line_, '\t', fields_);
  return true;
}

void TsvReader::expect_header(const std::vector<std::string>& names, bool exact,
                              const std::string& description) {
  const bool read = line_number_ == 0 && next();
  if (!read && line_number_ == 0) {
    throw DataError(
        fmt::format("{}: file is empty (expected the header \"{}\")", path_, join(names, "<TAB>")));
  }
  bool ok = read && fields_.size() >= names.size() && (!exact || fields_.size() == names.size());
  for (std::size_t i = 0; ok && i < names.size(); ++i) ok = fields_[i] == names[i];
  if (!ok) {
    throw DataError(fmt::format("{}:1: expected the header \"{}{}\"{}", path_, join(names, "<TAB>"),
                                exact ? "" : "[<TAB>...]",
                                description.empty() ? "" : " " + description));
  }
}

void TsvReader::fail(const std::string& message) const {
  throw DataError(fmt::format("{}:{}: {}", path_, line_number_, message));
}

std::string split_csv(std::string_view line, char delimiter, std::vector<std::string>& out) {
  out.clear();
  std::size_t i = 0;
  for (;;) {
    std::string field;
    if (i < line.size() && line[i] == '"') {
      const std::size_t opened = i + 1;
      ++i;
      for (;;) {
        if (i >= line.size()) {
          return fmt::format(
              "unterminated quoted field (opened at column {}); quoted fields "
              "spanning lines are not supported",
              opened);
        }
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += line[i++];
      }
      if (i < line.size() && line[i] != delimiter) {
        return fmt::format("unexpected text after the closing quote at column {}", i + 1);
      }
    } else {
      const std::size_t start = i;
      while (i < line.size() && line[i] != delimiter) {
        if (line[i] == '"') {
          return fmt::format(
              "a quote inside an unquoted field at column {} (quote the whole "
              "field and write the quote as \"\")",
              i + 1);
        }
        ++i;
      }
      field.assign(line.substr(start, i - start));
    }
    out.push_back(std::move(field));
    if (i >= line.size()) return "";
    ++i;  // the delimiter
  }
}

}  // namespace attnrec
