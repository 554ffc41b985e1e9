#include "attnrec/data/log_formats.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "attnrec/data/tsv.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

LineReader::LineReader(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "rb");
  if (!file_) throw DataError(path + ": cannot open interaction log");
  buffer_.resize(1 << 20);
}

LineReader::~LineReader() {
  if (file_) std::fclose(file_);
}

namespace {

std::string_view without_cr(std::string_view s) {
  if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  return s;
}

}  // namespace

bool LineReader::next(std::string_view& line) {
  if (carry_used_) {  // the previous line was returned from carry_
    carry_.clear();
    carry_used_ = false;
  }
  for (;;) {
    const auto nl = std::find(buffer_.data() + pos_, buffer_.data() + end_, '\n');
    if (nl != buffer_.data() + end_) {
      const std::size_t start = pos_;
      pos_ = static_cast<std::size_t>(nl - buffer_.data()) + 1;
      if (!carry_.empty()) {
        carry_.append(buffer_.data() + start, nl);
        line = without_cr(carry_);
        carry_used_ = true;
      } else {
        line = without_cr(std::string_view(buffer_.data() + start, nl - (buffer_.data() + start)));
      }
      ++line_number_;
      return true;
    }
    carry_.append(buffer_.data() + pos_, end_ - pos_);
    pos_ = end_ = 0;
    const std::size_t n = std::fread(buffer_.data(), 1, buffer_.size(), file_);
    if (n == 0) {
      if (std::ferror(file_)) throw IoError(path_ + ": read error");
      if (carry_.empty()) return false;
      line_store_ = std::move(carry_);
      carry_.clear();
      line = without_cr(line_store_);  // last line without a final newline
      ++line_number_;
      return true;
    }
    hash_.update(buffer_.data(), n);
    bytes_ += static_cast<std::int64_t>(n);
    end_ = n;
  }
}

namespace {

std::vector<std::string_view> split_whitespace(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

void split_on(std::string_view s, std::string_view sep, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t start = 0;
  for (;;) {
    const auto k = s.find(sep, start);
    if (k == std::string_view::npos) {
      out.push_back(s.substr(start));
      return;
    }
    out.push_back(s.substr(start, k - start));
    start = k + sep.size();
  }
}

bool is_number(std::string_view s) {
  double v = 0;
  return parse_double(s, v);
}

std::string parse_time(std::string_view s, LogRecord& r) {
  if (!parse_int64(s, r.time)) return fmt::format("timestamp must be an integer, got \"{}\"", s);
  r.has_time = true;
  return "";
}

std::string parse_rating(std::string_view s, LogRecord& r) {
  if (!parse_double(s, r.rating)) return fmt::format("rating must be a number, got \"{}\"", s);
  r.has_rating = true;
  return "";
}

/// MovieLens ratings.dat (`u::i::r::t`) and u.data (`u<TAB>i<TAB>r<TAB>t`).
class MovieLensParser : public LogParser {
 public:
  explicit MovieLensParser(bool tabs) : tabs_(tabs) {}
  std::string parse(std::string_view line, std::vector<LogRecord>& out) override {
    out.clear();
    if (tabs_) {
      split(line, '\t', f_);
    } else {
      split_on(line, "::", f_);
    }
    if (f_.size() != 4) {
      return fmt::format("expected 4 fields user{0}item{0}rating{0}timestamp, got {1}",
                         tabs_ ? "<TAB>" : "::", f_.size());
    }
    LogRecord r;
    r.user = f_[0];
    r.item = f_[1];
    if (auto e = parse_rating(f_[2], r); !e.empty()) return e;
    if (auto e = parse_time(f_[3], r); !e.empty()) return e;
    out.push_back(r);
    return "";
  }
  bool has_ratings() const override { return true; }

 private:
  bool tabs_;
  std::vector<std::string_view> f_;
};

/// Taobao UserBehavior.csv: `user,item,category,behavior,timestamp`.
class TaobaoParser : public LogParser {
 public:
  std::string parse(std::string_view line, std::vector<LogRecord>& out) override {
    out.clear();
    split(line, ',', f_);
    if (f_.size() != 5) {
      return fmt::format(
          "expected 5 comma-separated fields user,item,category,behavior,timestamp, got {}",
          f_.size());
    }
    LogRecord r;
    r.user = f_[0];
    r.item = f_[1];
    r.category = f_[2];
    r.behavior = f_[3];
    if (auto e = parse_time(f_[4], r); !e.empty()) return e;
    out.push_back(r);
    return "";
  }
  bool has_ratings() const override { return false; }
  bool has_behaviors() const override { return true; }

 private:
  std::vector<std::string_view> f_;
};

/// Amazon review JSON lines: reviewerID, asin, unixReviewTime, optional overall.
class AmazonParser : public LogParser {
 public:
  explicit AmazonParser(bool need_rating) : need_rating_(need_rating) {}
  std::string parse(std::string_view line, std::vector<LogRecord>& out) override {
    out.clear();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      return std::string("invalid JSON: ") + e.what();
    }
    if (!j.is_object()) return "expected a JSON object";
    const auto user = j.find("reviewerID"), item = j.find("asin");
    if (user == j.end() || !user->is_string()) return "missing string field \"reviewerID\"";
    if (item == j.end() || !item->is_string()) return "missing string field \"asin\"";
    const auto t = j.find("unixReviewTime");
    if (t == j.end() || !t->is_number_integer()) return "missing integer field \"unixReviewTime\"";
    // The record's views point into these members until the next line.
    user_ = user->get<std::string>();
    item_ = item->get<std::string>();
    LogRecord r;
    r.user = user_;
    r.item = item_;
    r.time = t->get<std::int64_t>();
    r.has_time = true;
    const auto rating = j.find("overall");
    if (rating != j.end()) {
      if (!rating->is_number()) return "field \"overall\" must be a number";
      r.rating = rating->get<double>();
      r.has_rating = true;
    } else if (need_rating_) {
      return "--min-rating is set but the line has no \"overall\" rating";
    }
    out.push_back(r);
    return "";
  }
  bool has_ratings() const override { return true; }

 private:
  bool need_rating_;
  std::string user_, item_;
};

/// `user item1 item2 ...` per line, oldest first.
class SequenceParser : public LogParser {
 public:
  std::string parse(std::string_view line, std::vector<LogRecord>& out) override {
    out.clear();
    const auto tokens = split_whitespace(line);
    if (tokens.size() < 2) {
      return fmt::format("expected \"user item1 item2 ...\", got {} field(s)", tokens.size());
    }
    for (std::size_t k = 1; k < tokens.size(); ++k) {
      LogRecord r;
      r.user = tokens[0];
      r.item = tokens[k];
      out.push_back(r);
    }
    return "";
  }
  bool has_ratings() const override { return false; }
  bool times_are_positions() const override { return true; }
};

/// Generic CSV/TSV: `--columns role=COLUMN,...` by index or header name; RFC 4180 quoting.
class CsvParser : public LogParser {
 public:
  explicit CsvParser(const PreprocessOptions& o) : mapping_(o.columns), delimiter_(o.delimiter[0]) {
    resolve(nullptr);
    header_ = header_ || o.header;
  }
  bool reads_header() const override { return header_; }
  void header(std::string_view line) override {
    std::vector<std::string> names;
    const auto problem = split_csv(line, delimiter_, names);
    if (!problem.empty()) throw DataError("the header line: " + problem);
    resolve(&names);
  }
  std::string parse(std::string_view line, std::vector<LogRecord>& out) override {
    out.clear();
    if (user_ < 0 || item_ < 0) {  // columns named by a header that was never read
      return "the header line naming the --columns was not found before this line";
    }
    if (auto problem = split_csv(line, delimiter_, f_); !problem.empty()) return problem;
    if (f_.size() < min_fields_) {
      return fmt::format("expected at least {} '{}'-separated fields, got {}", min_fields_,
                         delimiter_ == '\t' ? std::string("\\t") : std::string(1, delimiter_),
                         f_.size());
    }
    LogRecord r;
    r.user = f_[static_cast<std::size_t>(user_)];
    r.item = f_[static_cast<std::size_t>(item_)];
    if (category_ >= 0) r.category = f_[static_cast<std::size_t>(category_)];
    if (behavior_ >= 0) r.behavior = f_[static_cast<std::size_t>(behavior_)];
    if (time_ >= 0) {
      if (auto e = parse_time(f_[static_cast<std::size_t>(time_)], r); !e.empty()) return e;
    }
    if (rating_ >= 0) {
      if (auto e = parse_rating(f_[static_cast<std::size_t>(rating_)], r); !e.empty()) return e;
    }
    out.push_back(r);
    return "";
  }
  bool has_ratings() const override { return maps("rating"); }
  bool has_behaviors() const override { return maps("behavior"); }

 private:
  bool maps(const char* role) const {
    return std::any_of(mapping_.begin(), mapping_.end(), [&](const std::string& m) {
      return m.rfind(std::string(role) + "=", 0) == 0;
    });
  }
  /// Resolves `role=COLUMN` to indices; names need the header's `names`.
  void resolve(const std::vector<std::string>* names);

  std::vector<std::string> mapping_;
  char delimiter_;
  int user_ = -1, item_ = -1, time_ = -1, rating_ = -1, category_ = -1, behavior_ = -1;
  std::size_t min_fields_ = 0;
  bool header_ = false;
  std::vector<std::string> f_;
};

void CsvParser::resolve(const std::vector<std::string>* names) {
  user_ = item_ = time_ = rating_ = category_ = behavior_ = -1;
  min_fields_ = 0;
  for (const auto& m : mapping_) {
    const auto eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size()) {
      throw UsageError("preprocess: --columns entry \"" + m + "\" must be ROLE=COLUMN");
    }
    const std::string role = m.substr(0, eq), column = m.substr(eq + 1);
    std::int64_t index = -1;
    if (!parse_int64(column, index)) {
      header_ = true;  // a column named by its header
      if (!names) continue;
      const auto it = std::find(names->begin(), names->end(), column);
      if (it == names->end()) {
        std::string hint;
        if (auto near = closest_match(column, *names)) hint = "; did you mean \"" + *near + "\"?";
        throw DataError(fmt::format("--columns: no column named \"{}\" in the header [{}]{}",
                                    column, join(*names, ", "), hint));
      }
      index = it - names->begin();
    } else if (index < 0) {
      throw UsageError("preprocess: --columns: column index must be >= 0 in \"" + m + "\"");
    }
    int* slot = role == "user"       ? &user_
                : role == "item"     ? &item_
                : role == "time"     ? &time_
                : role == "rating"   ? &rating_
                : role == "category" ? &category_
                : role == "behavior" ? &behavior_
                                     : nullptr;
    if (!slot) {
      throw UsageError("preprocess: --columns: unknown role \"" + role +
                       "\" (expected user, item, time, rating, category, behavior)");
    }
    if (*slot >= 0 && index >= 0) {
      throw UsageError("preprocess: --columns: role \"" + role + "\" given twice");
    }
    *slot = static_cast<int>(index);
    min_fields_ = std::max<std::size_t>(min_fields_, static_cast<std::size_t>(index + 1));
  }
  if ((names || !header_) && (user_ < 0 || item_ < 0)) {
    throw UsageError("preprocess: --columns must map both user and item");
  }
}

}  // namespace

std::unique_ptr<LogParser> make_log_parser(LogFormat format, const PreprocessOptions& o) {
  switch (format) {
    case LogFormat::movielens:
      return std::make_unique<MovieLensParser>(false);
    case LogFormat::movielens_tsv:
      return std::make_unique<MovieLensParser>(true);
    case LogFormat::taobao:
      return std::make_unique<TaobaoParser>();
    case LogFormat::amazon:
      return std::make_unique<AmazonParser>(o.min_rating.has_value());
    case LogFormat::sequence:
      return std::make_unique<SequenceParser>();
    case LogFormat::csv:
      return std::make_unique<CsvParser>(o);
    case LogFormat::automatic:
      break;
  }
  throw UsageError("preprocess: the format must be detected (detect_format) before parsing");
}

LogFormat detect_format(const std::string& path) {
  LineReader reader(path);
  std::string_view line;
  while (reader.next(line)) {
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string where = fmt::format("{}:{}", path, reader.line_number());
    if (line.front() == '{') return LogFormat::amazon;
    if (line.find("::") != std::string_view::npos) return LogFormat::movielens;
    std::vector<std::string_view> f;
    split(line, ',', f);
    if (f.size() == 5 && (f[3] == "pv" || f[3] == "buy" || f[3] == "cart" || f[3] == "fav")) {
      return LogFormat::taobao;
    }
    split(line, '\t', f);
    if (f.size() == 4 && std::all_of(f.begin(), f.end(), is_number))
      return LogFormat::movielens_tsv;
    if (line.find(',') == std::string_view::npos && split_whitespace(line).size() >= 2) {
      return LogFormat::sequence;
    }
    throw DataError(where +
                    ": cannot detect the log format from this line; name it with "
                    "--format (for a generic CSV/TSV: --format csv --columns "
                    "user=COL,item=COL[,time=COL,rating=COL,category=COL])");
  }
  throw DataError(path + ": the interaction log is empty");
}

}  // namespace attnrec
