#include "attnrec/data/preprocess.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "attnrec/data/interner.hpp"
#include "attnrec/data/leakage.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/hash.hpp"
#include "attnrec/util/rng.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

const std::vector<std::string>& preprocess_formats() {
  static const std::vector<std::string> formats = {"movielens", "movielens_tsv", "sequence",
                                                   "amazon",    "taobao",        "csv"};
  return formats;
}

const std::vector<std::string>& preprocess_output_files() {
  static const std::vector<std::string> files = {
      "train.tsv",           "valid.tsv",           "test.tsv",
      "test_candidates.tsv", "interactions.tsv",    "stats.json",
      "protocol.json",       "item_categories.tsv", "leakage_report.json"};
  return files;
}

void PreprocessOptions::validate() const {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw UsageError("preprocess: " + message);
  };
  require(!input.empty(), "--input is required");
  require(!out_dir.empty(), "--out is required");
  const auto& f = preprocess_formats();
  require(format == "auto" || std::find(f.begin(), f.end(), format) != f.end(),
          fmt::format("--format must be auto or one of {}, got \"{}\"", join(f, ", "), format));
  require(dedup == "first" || dedup == "last" || dedup == "none",
          "--dedup must be first, last or none, got \"" + dedup + "\"");
  require(split == "leave_last_out" || split == "temporal",
          "--split must be leave_last_out or temporal, got \"" + split + "\"");
  require(sampling == "uniform" || sampling == "popularity",
          "--sampling must be uniform or popularity, got \"" + sampling + "\"");
  require(ranking_sampling == "uniform" || ranking_sampling == "popularity",
          "--ranking-sampling must be uniform or popularity, got \"" + ranking_sampling + "\"");
  require(min_user_interactions >= 0 && min_item_interactions >= 0,
          "--min-user-interactions and --min-item-interactions must be >= 0");
  require(max_history >= 1, "--max-history must be >= 1");
  require(min_history >= 0 && min_history <= max_history,
          "--min-history must be in [0, --max-history]");
  require(negatives >= 1 && negatives <= 1000,
          "--negatives must be in [1, 1000] (training needs negative samples)");
  require(ranking_negatives >= 0 && ranking_negatives <= 100000,
          "--ranking-negatives must be in [0, 100000]");
  require(valid_fraction >= 0 && test_fraction > 0 && valid_fraction + test_fraction < 1,
          "--valid-fraction >= 0, --test-fraction > 0 and their sum < 1 are required");
  require(delimiter.size() == 1 && delimiter != "\n" && delimiter != "\r",
          "--delimiter must be one character (use $'\\t' for tab)");
  require(format != "csv" || !csv_columns.empty(),
          "--format csv needs --columns, e.g. --columns user=0,item=1,time=3");
  require(format == "csv" || format == "auto" || csv_columns.empty(),
          "--columns applies to --format csv only");
}

nlohmann::json PreprocessOptions::to_json() const {
  return {{"input", input},
          {"format", format},
          {"delimiter", delimiter},
          {"csv_columns", csv_columns},
          {"csv_header", csv_header},
          {"min_rating", min_rating ? nlohmann::json(*min_rating) : nlohmann::json()},
          {"behaviors", behaviors},
          {"dedup", dedup},
          {"min_user_interactions", min_user_interactions},
          {"min_item_interactions", min_item_interactions},
          {"max_history", max_history},
          {"min_history", min_history},
          {"split", split},
          {"valid_fraction", valid_fraction},
          {"test_fraction", test_fraction},
          {"negatives", negatives},
          {"sampling", sampling},
          {"ranking_negatives", ranking_negatives},
          {"ranking_sampling", ranking_sampling},
          {"seed", seed}};
}

namespace {

/// Reads a file line by line through a large buffer and hashes the exact bytes on the way, so
/// the input is read once for both. Lines may end in \n or \r\n.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) throw DataError(path + ": cannot open interaction log");
    buffer_.resize(1 << 20);
  }
  ~LineReader() {
    if (file_) std::fclose(file_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  /// The next line without its end, or false at the end of the file.
  bool next(std::string_view& line) {
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
          line = finish(carry_);
          carry_used_ = true;
        } else {
          line = finish(std::string_view(buffer_.data() + start, nl - (buffer_.data() + start)));
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
        line = finish(line_store_);  // last line without a final newline
        ++line_number_;
        return true;
      }
      hash_.update(buffer_.data(), n);
      bytes_ += static_cast<std::int64_t>(n);
      end_ = n;
    }
  }
  std::int64_t line_number() const { return line_number_; }
  std::int64_t bytes() const { return bytes_; }
  std::string sha256() { return hash_.hex(); }

 private:
  static std::string_view finish(std::string_view s) {
    if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    return s;
  }
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

/// One kept interaction (32 bytes; the log's text is not kept).
struct Event {
  std::int32_t user;
  std::int32_t item;
  std::int64_t time;
  std::int64_t order;  ///< position in the input, breaks timestamp ties
  std::int32_t split;  ///< 0 train, 1 valid, 2 test, -1 no sample
  std::int32_t unused;
};
static_assert(sizeof(Event) == 32, "Event should stay compact");

/// Fields of one parsed interaction, pointing into the current line.
struct Fields {
  std::string_view user, item, category, behavior;
  std::int64_t time = 0;
  bool has_time = false;
  bool has_rating = false;
  double rating = 0;
};

struct LineError {
  std::string message;
};

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

/// Generic csv column mapping: role -> index.
struct CsvLayout {
  int user = -1, item = -1, time = -1, rating = -1, category = -1, behavior = -1;
  std::size_t min_fields = 0;
  bool header = false;
};

CsvLayout parse_csv_columns(const std::vector<std::string>& mapping, bool header_flag,
                            const std::vector<std::string_view>* header_fields) {
  CsvLayout layout;
  layout.header = header_flag;
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& m : mapping) {
    const auto eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size()) {
      throw UsageError("preprocess: --columns entry \"" + m + "\" must be ROLE=COLUMN");
    }
    pairs.emplace_back(m.substr(0, eq), m.substr(eq + 1));
  }
  for (const auto& [role, column] : pairs) {
    std::int64_t index = -1;
    if (!parse_int64(column, index)) {
      layout.header = true;  // a column named by its header
      if (!header_fields) continue;
      std::vector<std::string> names;
      for (auto f : *header_fields) names.emplace_back(f);
      const auto it = std::find(names.begin(), names.end(), column);
      if (it == names.end()) {
        std::string hint;
        if (auto near = closest_match(column, names)) hint = "; did you mean \"" + *near + "\"?";
        throw DataError(fmt::format("--columns: no column named \"{}\" in the header [{}]{}",
                                    column, join(names, ", "), hint));
      }
      index = it - names.begin();
    } else if (index < 0) {
      throw UsageError("preprocess: --columns: column index must be >= 0 in \"" + role + "=" +
                       column + "\"");
    }
    int* slot = role == "user"       ? &layout.user
                : role == "item"     ? &layout.item
                : role == "time"     ? &layout.time
                : role == "rating"   ? &layout.rating
                : role == "category" ? &layout.category
                : role == "behavior" ? &layout.behavior
                                     : nullptr;
    if (!slot) {
      throw UsageError("preprocess: --columns: unknown role \"" + role +
                       "\" (expected user, item, time, rating, category, behavior)");
    }
    if (*slot >= 0 && index >= 0) {
      throw UsageError("preprocess: --columns: role \"" + role + "\" given twice");
    }
    *slot = static_cast<int>(index);
    layout.min_fields = std::max<std::size_t>(layout.min_fields, index + 1);
  }
  if (header_fields || !layout.header) {
    if (layout.user < 0 || layout.item < 0) {
      throw UsageError("preprocess: --columns must map both user and item");
    }
  }
  return layout;
}

/// Characters that would break the sample format (or the reader's separator checks).
bool has_bad_id_char(std::string_view id) {
  return id.find_first_of("\t ,;|") != std::string_view::npos;
}

double share(std::int64_t part, std::int64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

/// Output file that also hashes what it writes (for protocol.json).
struct HashedOutput {
  HashedOutput(const std::string& path, const std::string& what) : out(path, what) {}
  void write(std::string_view s) {
    out.write(s);
    hash.update(s);
  }
  AtomicFileWriter out;
  Sha256 hash;
};

}  // namespace

std::string detect_format(const std::string& path) {
  LineReader reader(path);
  std::string_view line;
  while (reader.next(line)) {
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string where = fmt::format("{}:{}", path, reader.line_number());
    if (line.front() == '{') return "amazon";
    if (line.find("::") != std::string_view::npos) return "movielens";
    std::vector<std::string_view> f;
    split(line, ',', f);
    if (f.size() == 5 && (f[3] == "pv" || f[3] == "buy" || f[3] == "cart" || f[3] == "fav")) {
      return "taobao";
    }
    split(line, '\t', f);
    if (f.size() == 4 && std::all_of(f.begin(), f.end(), is_number)) return "movielens_tsv";
    if (line.find(',') == std::string_view::npos && split_whitespace(line).size() >= 2) {
      return "sequence";
    }
    throw DataError(where +
                    ": cannot detect the log format from this line; name it with "
                    "--format (for a generic CSV/TSV: --format csv --columns "
                    "user=COL,item=COL[,time=COL,rating=COL,category=COL])");
  }
  throw DataError(path + ": the interaction log is empty");
}

nlohmann::json preprocess(const PreprocessOptions& o) {
  o.validate();
  namespace fs = std::filesystem;
  const std::string format = o.format == "auto" ? detect_format(o.input) : o.format;
  const bool has_ratings = format == "movielens" || format == "movielens_tsv" || format == "amazon";
  bool csv_has_rating = false, csv_has_behavior = false;
  CsvLayout csv;
  if (format == "csv") {
    csv = parse_csv_columns(o.csv_columns, o.csv_header, nullptr);
    // Roles mapped by header name are resolved only once the header is read, so look at the
    // mapping itself.
    auto maps = [&](const char* role) {
      return std::any_of(o.csv_columns.begin(), o.csv_columns.end(), [&](const std::string& m) {
        return m.rfind(std::string(role) + "=", 0) == 0;
      });
    };
    csv_has_rating = maps("rating");
    csv_has_behavior = maps("behavior");
  }
  if (o.min_rating && !has_ratings && !csv_has_rating) {
    throw UsageError("preprocess: --min-rating needs ratings, but format " + format + " has none");
  }
  if (!o.behaviors.empty() && format != "taobao" && !csv_has_behavior) {
    throw UsageError(
        "preprocess: --behaviors needs a behavior column (taobao, or csv with "
        "behavior=COL), but format " +
        format + " has none");
  }
  spdlog::info("preprocess: reading {} as {}", o.input, format);

  // ---- 1. stream the log
  StringInterner users, items, categories;
  std::vector<std::int32_t> item_category;  // per item, -1 unknown
  std::vector<Event> events;
  std::vector<std::int64_t> sequence_clock;  // sequence format: per-user event counter
  std::int64_t lines = 0, blank = 0, header_lines = 0, below_rating = 0, other_behavior = 0;
  bool time_from_order = false;
  LineReader reader(o.input);
  std::string_view line;
  std::vector<std::string_view> f;
  Fields fields;

  auto add_event = [&](const Fields& e, std::int64_t line_number) -> std::optional<LineError> {
    if (e.user.empty()) return LineError{"empty user id"};
    if (e.item.empty()) return LineError{"empty item id"};
    for (auto id : {e.user, e.item}) {
      if (has_bad_id_char(id)) {
        return LineError{
            fmt::format("id \"{}\" contains a tab, space, ',', ';' or '|', which "
                        "the sample format cannot hold",
                        id)};
      }
    }
    if (o.min_rating && e.has_rating && e.rating < *o.min_rating) {
      ++below_rating;
      return std::nullopt;
    }
    if (!o.behaviors.empty() &&
        std::find(o.behaviors.begin(), o.behaviors.end(), e.behavior) == o.behaviors.end()) {
      ++other_behavior;
      return std::nullopt;
    }
    const std::int32_t u = users.intern(e.user);
    const std::int32_t i = items.intern(e.item);
    if (static_cast<std::size_t>(i) == item_category.size()) item_category.push_back(-1);
    if (!e.category.empty()) {
      if (has_bad_id_char(e.category)) {
        return LineError{
            fmt::format("category \"{}\" contains a tab, space, ',', ';' or '|'", e.category)};
      }
      // An item keeps the first category it is seen with.
      if (item_category[i] < 0) item_category[i] = categories.intern(e.category);
    }
    std::int64_t time = e.time;
    if (!e.has_time) {
      if (format == "sequence") {
        if (static_cast<std::size_t>(u) >= sequence_clock.size()) sequence_clock.resize(u + 1, 0);
        time = sequence_clock[u]++;
      } else {
        time = line_number;
        time_from_order = true;
      }
    }
    events.push_back(Event{u, i, time, static_cast<std::int64_t>(events.size()), -1, 0});
    return std::nullopt;
  };

  auto parse_time = [](std::string_view s, Fields& e) -> std::optional<LineError> {
    if (!parse_int64(s, e.time)) {
      return LineError{fmt::format("timestamp must be an integer, got \"{}\"", s)};
    }
    e.has_time = true;
    return std::nullopt;
  };
  auto parse_rating = [](std::string_view s, Fields& e) -> std::optional<LineError> {
    if (!parse_double(s, e.rating))
      return LineError{fmt::format("rating must be a number, got \"{}\"", s)};
    e.has_rating = true;
    return std::nullopt;
  };

  auto parse_line = [&](std::string_view text, std::int64_t n) -> std::optional<LineError> {
    fields = Fields{};
    if (format == "movielens" || format == "movielens_tsv") {
      if (format == "movielens") {
        split_on(text, "::", f);
      } else {
        split(text, '\t', f);
      }
      if (f.size() != 4) {
        return LineError{fmt::format("expected 4 fields user{0}item{0}rating{0}timestamp, got {1}",
                                     format == "movielens" ? "::" : "<TAB>", f.size())};
      }
      fields.user = f[0];
      fields.item = f[1];
      if (auto e = parse_rating(f[2], fields)) return e;
      if (auto e = parse_time(f[3], fields)) return e;
      return add_event(fields, n);
    }
    if (format == "taobao") {
      split(text, ',', f);
      if (f.size() != 5) {
        return LineError{fmt::format(
            "expected 5 comma-separated fields user,item,category,behavior,timestamp, got {}",
            f.size())};
      }
      fields.user = f[0];
      fields.item = f[1];
      fields.category = f[2];
      fields.behavior = f[3];
      if (auto e = parse_time(f[4], fields)) return e;
      return add_event(fields, n);
    }
    if (format == "amazon") {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(text);
      } catch (const nlohmann::json::parse_error& e) {
        return LineError{std::string("invalid JSON: ") + e.what()};
      }
      if (!j.is_object()) return LineError{"expected a JSON object"};
      auto string_field = [&](const char* key) -> std::optional<std::string> {
        const auto it = j.find(key);
        if (it == j.end() || !it->is_string()) return std::nullopt;
        return it->get<std::string>();
      };
      const auto user = string_field("reviewerID");
      const auto item = string_field("asin");
      if (!user) return LineError{"missing string field \"reviewerID\""};
      if (!item) return LineError{"missing string field \"asin\""};
      const auto t = j.find("unixReviewTime");
      if (t == j.end() || !t->is_number_integer()) {
        return LineError{"missing integer field \"unixReviewTime\""};
      }
      // The views must outlive add_event only; keep the strings in locals of this scope.
      const std::string user_s = *user, item_s = *item;
      fields.user = user_s;
      fields.item = item_s;
      fields.time = t->get<std::int64_t>();
      fields.has_time = true;
      const auto r = j.find("overall");
      if (r != j.end()) {
        if (!r->is_number()) return LineError{"field \"overall\" must be a number"};
        fields.rating = r->get<double>();
        fields.has_rating = true;
      } else if (o.min_rating) {
        return LineError{"--min-rating is set but the line has no \"overall\" rating"};
      }
      return add_event(fields, n);
    }
    if (format == "sequence") {
      const auto tokens = split_whitespace(text);
      if (tokens.size() < 2) {
        return LineError{
            fmt::format("expected \"user item1 item2 ...\", got {} field(s)", tokens.size())};
      }
      fields.user = tokens[0];
      for (std::size_t k = 1; k < tokens.size(); ++k) {
        fields.item = tokens[k];
        if (auto e = add_event(fields, n)) return e;
      }
      return std::nullopt;
    }
    // generic csv
    split(text, o.delimiter[0], f);
    if (f.size() < csv.min_fields) {
      return LineError{fmt::format("expected at least {} '{}'-separated fields, got {}",
                                   csv.min_fields, o.delimiter == "\t" ? "\\t" : o.delimiter,
                                   f.size())};
    }
    fields.user = f[csv.user];
    fields.item = f[csv.item];
    if (csv.category >= 0) fields.category = f[csv.category];
    if (csv.behavior >= 0) fields.behavior = f[csv.behavior];
    if (csv.time >= 0) {
      if (auto e = parse_time(f[csv.time], fields)) return e;
    }
    if (csv.rating >= 0) {
      if (auto e = parse_rating(f[csv.rating], fields)) return e;
    }
    return add_event(fields, n);
  };

  while (reader.next(line)) {
    ++lines;
    const std::int64_t n = reader.line_number();
    if (line.find_first_not_of(" \t") == std::string_view::npos) {
      ++blank;
      continue;
    }
    if (format == "csv" && n == 1 && csv.header) {
      split(line, o.delimiter[0], f);
      csv = parse_csv_columns(o.csv_columns, true, &f);
      ++header_lines;
      continue;
    }
    if (auto error = parse_line(line, n)) {
      throw DataError(fmt::format("{}:{}: {}", o.input, n, error->message));
    }
  }
  const std::string input_sha = reader.sha256();
  const std::int64_t read_interactions = static_cast<std::int64_t>(events.size());
  if (events.empty()) {
    throw DataError(
        fmt::format("{}: no interactions kept ({} lines, {} below --min-rating, {} "
                    "with other behaviours)",
                    o.input, lines, below_rating, other_behavior));
  }
  spdlog::info("preprocess: {} lines, {} interactions, {} users, {} items", lines,
               read_interactions, users.size(), items.size());

  // ---- 2. deduplicate (user, item)
  std::int64_t duplicates = 0;
  if (o.dedup != "none") {
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      return std::tie(a.user, a.item, a.time, a.order) < std::tie(b.user, b.item, b.time, b.order);
    });
    const bool keep_last = o.dedup == "last";
    std::size_t w = 0;
    for (std::size_t r = 0; r < events.size();) {
      std::size_t e = r;
      while (e < events.size() && events[e].user == events[r].user &&
             events[e].item == events[r].item) {
        ++e;
      }
      events[w++] = events[keep_last ? e - 1 : r];
      duplicates += static_cast<std::int64_t>(e - r - 1);
      r = e;
    }
    events.resize(w);
  }

  // ---- 3. k-core
  std::vector<std::int64_t> user_count, item_count;
  std::int64_t kcore_dropped = 0, kcore_rounds = 0;
  for (;;) {
    user_count.assign(static_cast<std::size_t>(users.size()), 0);
    item_count.assign(static_cast<std::size_t>(items.size()), 0);
    for (const auto& e : events) {
      ++user_count[e.user];
      ++item_count[e.item];
    }
    const auto before = events.size();
    events.erase(std::remove_if(events.begin(), events.end(),
                                [&](const Event& e) {
                                  return user_count[e.user] < o.min_user_interactions ||
                                         item_count[e.item] < o.min_item_interactions;
                                }),
                 events.end());
    if (events.size() == before) break;
    kcore_dropped += static_cast<std::int64_t>(before - events.size());
    ++kcore_rounds;
  }
  if (events.empty()) {
    throw DataError(
        fmt::format("{}: k-core filtering (users >= {}, items >= {}) removed every "
                    "interaction; lower --min-user-interactions or "
                    "--min-item-interactions",
                    o.input, o.min_user_interactions, o.min_item_interactions));
  }

  // ---- 4. timelines: each user's events by (time, file order)
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return std::tie(a.user, a.time, a.order) < std::tie(b.user, b.time, b.order);
  });
  std::vector<std::pair<std::size_t, std::size_t>> timeline;  // [begin, end) per kept user
  for (std::size_t r = 0; r < events.size();) {
    std::size_t e = r;
    while (e < events.size() && events[e].user == events[r].user) ++e;
    timeline.emplace_back(r, e);
    r = e;
  }
  std::vector<std::int32_t> kept_items;
  for (std::int32_t i = 0; i < static_cast<std::int32_t>(items.size()); ++i) {
    if (item_count[i] > 0) kept_items.push_back(i);
  }

  // ---- 5. split
  nlohmann::json split_info = {{"protocol", o.split}};
  std::int64_t short_history = 0;
  if (o.split == "leave_last_out") {
    std::int64_t train_only_users = 0;
    for (const auto& [b, e] : timeline) {
      const std::size_t n = e - b;
      for (std::size_t k = 0; k < n; ++k) {
        int s = 0;
        if (n >= 3 && k == n - 1) s = 2;
        if (n >= 3 && k == n - 2) s = 1;
        events[b + k].split = s;
      }
      if (n < 3) ++train_only_users;
    }
    split_info["users_with_fewer_than_3_events_train_only"] = train_only_users;
  } else {
    std::vector<std::int64_t> times;
    times.reserve(events.size());
    for (const auto& e : events) times.push_back(e.time);
    auto quantile = [&](double q) {
      const auto k = std::min(times.size() - 1, static_cast<std::size_t>(q * times.size()));
      std::nth_element(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(k), times.end());
      return times[k];
    };
    const std::int64_t test_from = quantile(1.0 - o.test_fraction);
    const std::int64_t valid_from = quantile(1.0 - o.test_fraction - o.valid_fraction);
    for (auto& e : events) e.split = e.time >= test_from ? 2 : e.time >= valid_from ? 1 : 0;
    split_info["valid_from_time"] = valid_from;
    split_info["test_from_time"] = test_from;
  }
  // A target needs min_history earlier events; others stay in histories but make no sample.
  for (const auto& [b, e] : timeline) {
    for (std::size_t k = 0; k < e - b && k < static_cast<std::size_t>(o.min_history); ++k) {
      if (events[b + k].split >= 0) ++short_history;
      events[b + k].split = -1;
    }
  }

  // ---- 6. sampling pools
  std::vector<std::int64_t> train_count(static_cast<std::size_t>(items.size()), 0);
  for (const auto& e : events) {
    if (e.split == 0) ++train_count[e.item];
  }
  std::vector<std::int32_t> popular_items;
  std::vector<double> popular_cdf;
  double total = 0;
  for (const auto i : kept_items) {
    if (train_count[i] == 0) continue;
    total += static_cast<double>(train_count[i]);
    popular_items.push_back(i);
    popular_cdf.push_back(total);
  }
  if (popular_items.empty() && (o.sampling == "popularity" || o.ranking_sampling == "popularity")) {
    throw DataError(
        "preprocess: popularity sampling needs training interactions, and the "
        "training split is empty");
  }

  Rng rng(o.seed);
  std::vector<std::int32_t> interacted, chosen;
  auto draw = [&](bool popularity) {
    return popularity ? popular_items[rng.categorical(popular_cdf)]
                      : kept_items[rng.uniform_int(kept_items.size())];
  };
  // `count` distinct items the user never interacted with. The pool must hold enough of them,
  // which is checked first so that rejection sampling cannot loop for long.
  // available[0/1]: items of the uniform / popularity pool the current user never touched,
  // computed once per user (every interacted item is a kept item; only those with training
  // interactions are in the popularity pool).
  std::int64_t available[2] = {0, 0};
  auto count_available = [&]() {
    available[0] = static_cast<std::int64_t>(kept_items.size() - interacted.size());
    std::int64_t popular_touched = 0;
    for (const auto i : interacted) popular_touched += train_count[i] > 0;
    available[1] = static_cast<std::int64_t>(popular_items.size()) - popular_touched;
  };
  auto sample_negatives = [&](std::int32_t user, std::int64_t count, bool popularity,
                              std::vector<std::int32_t>& out) {
    out.clear();
    const auto& pool = popularity ? popular_items : kept_items;
    if (available[popularity ? 1 : 0] < count) {
      throw DataError(fmt::format(
          "preprocess: user \"{}\" interacted with all but {} of the {} items that can be drawn, "
          "fewer than the {} negatives asked for; lower --negatives/--ranking-negatives or "
          "filter such users (--min-item-interactions, fewer items)",
          users.token(user), available[popularity ? 1 : 0], pool.size(), count));
    }
    while (static_cast<std::int64_t>(out.size()) < count) {
      const std::int32_t c = draw(popularity);
      if (std::binary_search(interacted.begin(), interacted.end(), c)) continue;
      if (std::find(out.begin(), out.end(), c) != out.end()) continue;
      out.push_back(c);
    }
  };

  // ---- 7. write
  fs::create_directories(o.out_dir);
  const fs::path dir(o.out_dir);
  const char* split_names[] = {"train", "valid", "test"};
  std::vector<std::unique_ptr<HashedOutput>> outs;
  for (const char* name : split_names) {
    outs.push_back(std::make_unique<HashedOutput>((dir / (std::string(name) + ".tsv")).string(),
                                                  "sample file"));
    outs.back()->write("label\tuser\titem\thistory\ttime\n");
  }
  std::unique_ptr<HashedOutput> candidates;
  if (o.ranking_negatives > 0) {
    candidates =
        std::make_unique<HashedOutput>((dir / "test_candidates.tsv").string(), "candidates file");
    candidates->write("user\titem\thistory\ttime\tnegatives\n");
  }
  HashedOutput log_out((dir / "interactions.tsv").string(), "interaction log");
  log_out.write("user\titem\ttime\n");

  struct SplitStats {
    std::int64_t samples = 0, positives = 0, history_items = 0, users = 0;
  } split_stats[3];
  std::string history, buffer;
  std::vector<std::int32_t> negatives;
  for (const auto& [b, e] : timeline) {
    const std::int32_t u = events[b].user;
    const auto user_id = users.token(u);
    interacted.clear();
    for (std::size_t k = b; k < e; ++k) interacted.push_back(events[k].item);
    std::sort(interacted.begin(), interacted.end());
    interacted.erase(std::unique(interacted.begin(), interacted.end()), interacted.end());
    count_available();
    bool user_in[3] = {false, false, false};
    for (std::size_t k = b; k < e; ++k) {
      const Event& ev = events[k];
      buffer.clear();
      fmt::format_to(std::back_inserter(buffer), "{}\t{}\t{}\n", user_id, items.token(ev.item),
                     ev.time);
      log_out.write(buffer);
      if (ev.split < 0) continue;
      const std::size_t from = k - b > static_cast<std::size_t>(o.max_history)
                                   ? k - static_cast<std::size_t>(o.max_history)
                                   : b;
      history.clear();
      for (std::size_t h = from; h < k; ++h) {
        if (h > from) history += ',';
        history += items.token(events[h].item);
      }
      sample_negatives(u, o.negatives, o.sampling == "popularity", negatives);
      buffer.clear();
      fmt::format_to(std::back_inserter(buffer), "1\t{}\t{}\t{}\t{}\n", user_id,
                     items.token(ev.item), history, ev.time);
      for (const auto n : negatives) {
        fmt::format_to(std::back_inserter(buffer), "0\t{}\t{}\t{}\t{}\n", user_id, items.token(n),
                       history, ev.time);
      }
      outs[ev.split]->write(buffer);
      auto& st = split_stats[ev.split];
      st.samples += 1 + o.negatives;
      st.positives += 1;
      st.history_items += static_cast<std::int64_t>(k - from) * (1 + o.negatives);
      user_in[ev.split] = true;
      if (ev.split == 2 && candidates) {
        sample_negatives(u, o.ranking_negatives, o.ranking_sampling == "popularity", negatives);
        buffer.clear();
        fmt::format_to(std::back_inserter(buffer), "{}\t{}\t{}\t{}\t", user_id,
                       items.token(ev.item), history, ev.time);
        for (std::size_t n = 0; n < negatives.size(); ++n) {
          if (n > 0) buffer += ',';
          buffer += items.token(negatives[n]);
        }
        buffer += '\n';
        candidates->write(buffer);
      }
    }
    for (int s = 0; s < 3; ++s) split_stats[s].users += user_in[s];
  }
  for (int s = 0; s < 3; ++s) {
    if (split_stats[s].samples == 0) {
      throw DataError(fmt::format(
          "preprocess: the {} split is empty after filtering ({} users kept); the log is too "
          "small for split {} (or --min-history {} too large)",
          split_names[s], timeline.size(), o.split, o.min_history));
    }
  }
  nlohmann::json outputs;
  for (int s = 0; s < 3; ++s) {
    outs[s]->out.commit();
    outputs[std::string(split_names[s]) + ".tsv"] = outs[s]->hash.hex();
  }
  if (candidates) {
    candidates->out.commit();
    outputs["test_candidates.tsv"] = candidates->hash.hex();
  }
  log_out.out.commit();
  outputs["interactions.tsv"] = log_out.hash.hex();
  std::int64_t categorized = 0;
  if (categories.size() > 0) {
    std::string text = "item\tcategory\n";
    for (const auto i : kept_items) {
      if (item_category[i] < 0) continue;
      ++categorized;
      text += fmt::format("{}\t{}\n", items.token(i), categories.token(item_category[i]));
    }
    write_file_atomic((dir / "item_categories.tsv").string(), text);
    outputs["item_categories.tsv"] = sha256_hex(text);
  }

  // ---- 8. stats, protocol, leakage check
  nlohmann::json stats;
  stats["input"] = {{"path", o.input},
                    {"format", format},
                    {"lines", lines},
                    {"bytes", reader.bytes()},
                    {"sha256", input_sha}};
  stats["read"] = {
      {"interactions", read_interactions}, {"users", users.size()}, {"items", items.size()}};
  stats["dropped"] = {{"blank_lines", blank},
                      {"header_lines", header_lines},
                      {"below_min_rating", below_rating},
                      {"other_behaviors", other_behavior},
                      {"duplicates", duplicates},
                      {"kcore_interactions", kcore_dropped},
                      {"kcore_rounds", kcore_rounds},
                      {"targets_with_short_history", short_history}};
  stats["kept"] = {{"users", timeline.size()},
                   {"items", kept_items.size()},
                   {"interactions", events.size()},
                   {"categories", categories.size()},
                   {"items_with_category", categorized},
                   {"density", share(static_cast<std::int64_t>(events.size()),
                                     static_cast<std::int64_t>(timeline.size()) *
                                         static_cast<std::int64_t>(kept_items.size()))}};
  for (int s = 0; s < 3; ++s) {
    const auto& st = split_stats[s];
    stats["splits"][split_names[s]] = {
        {"samples", st.samples},
        {"positives", st.positives},
        {"positive_rate", share(st.positives, st.samples)},
        {"users", st.users},
        {"mean_history_length", share(st.history_items, st.samples)}};
  }
  if (candidates) {
    stats["ranking_candidates"] = {{"rows", split_stats[2].positives},
                                   {"negatives_per_row", o.ranking_negatives}};
  }
  nlohmann::json protocol;
  protocol["attnrec_protocol_version"] = 1;
  protocol["format"] = format;
  protocol["options"] = o.to_json();
  protocol["input"] = stats["input"];
  protocol["time"] = time_from_order        ? "file order (the log has no timestamps)"
                     : format == "sequence" ? "position in the user's sequence"
                                            : "timestamp column";
  protocol["ties"] = "events with equal timestamps keep their order in the input file";
  protocol["split"] = split_info;
  protocol["negatives"] = {{"per_positive", o.negatives},
                           {"sampling", o.sampling},
                           {"excluded", "every item the user interacted with, in any split"}};
  protocol["ranking_candidates"] =
      candidates ? nlohmann::json{{"file", "test_candidates.tsv"},
                                  {"negatives", o.ranking_negatives},
                                  {"sampling", o.ranking_sampling},
                                  {"excluded", "every item the user interacted with"}}
                 : nlohmann::json();
  protocol["outputs_sha256"] = outputs;
  write_file_atomic((dir / "stats.json").string(), stats.dump(2) + "\n");
  write_file_atomic((dir / "protocol.json").string(), protocol.dump(2) + "\n");

  // The checker re-reads the files it checks; the events are not needed any more.
  std::vector<Event>().swap(events);
  CheckDataOptions check;
  check.dir = o.out_dir;
  const auto report = check_data(check);
  write_file_atomic((dir / "leakage_report.json").string(), report.dump(2) + "\n");
  if (!report.at("ok").get<bool>()) {
    throw DataError("preprocess: the leakage check failed on its own output (a bug); see " +
                    (dir / "leakage_report.json").string());
  }
  stats["leakage_check"] = "passed";
  return stats;
}

}  // namespace attnrec
