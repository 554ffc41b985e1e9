#include "attnrec/data/dataset.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <cctype>
#include <exception>
#include <fstream>
#include <optional>
#include <thread>
#include <type_traits>

#include "attnrec/util/error.hpp"
#include "attnrec/util/hash.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

ReaderOptions reader_options(const DataConfig& data, std::int64_t threads) {
  ReaderOptions o;
  o.threads = threads;
  o.columns = data.columns;
  o.header = data.header;
  o.history_separator = data.history_separator.at(0);
  o.max_history = data.max_history;
  o.skip_bad_lines = data.on_bad_line == BadLinePolicy::skip;
  return o;
}

namespace {

constexpr std::size_t kMaxSkippedExamples = 5;

/// A line-level problem; becomes "file:line: message".
struct BadLine {
  std::string message;
};

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_role_name(std::string_view s) {
  const auto names = choice_names(column_roles());
  return std::find(names.begin(), names.end(), lowercase(s)) != names.end();
}

/// Column positions of each role (-1 when absent).
struct Layout {
  int label = -1, user = -1, item = -1, history = -1, time = -1;
  std::size_t fields = 0;
};

Layout layout_of(const std::vector<std::string>& columns) {
  Layout l;
  l.fields = columns.size();
  for (std::size_t i = 0; i < columns.size(); ++i) {
    const int k = static_cast<int>(i);
    if (columns[i] == "label") l.label = k;
    if (columns[i] == "user") l.user = k;
    if (columns[i] == "item") l.item = k;
    if (columns[i] == "history") l.history = k;
    if (columns[i] == "time") l.time = k;
  }
  return l;
}

/// Parses complete lines into a SampleSet: the whole file's, or one chunk's partial set when
/// a block is parsed by several threads. `ResolveItem` turns item ids into int32 (interning
/// while building a vocabulary, looking up with a fixed one); users always get a per-set group
/// index, and `ResolveUser` maps that group's string to a vocabulary id.
template <class ResolveItem, class ResolveUser>
class LineParser {
 public:
  LineParser(const std::string& path, const ReaderOptions& options, const Layout& layout,
             ResolveItem& resolve_item, ResolveUser& resolve_user, SampleSet& set,
             StringInterner& user_groups)
      : path_(path),
        options_(options),
        layout_(layout),
        resolve_item_(resolve_item),
        resolve_user_(resolve_user),
        set_(set),
        user_groups_(user_groups),
        expected_columns_(join(options.columns, ", ")) {}

  /// Parses the lines of `text` (each ends with '\n' except perhaps the file's last), the first
  /// being line `first_line` of the file. On a bad line that is an error (not skipped), stops
  /// and returns the message; otherwise returns an empty string.
  std::string parse(std::string_view text, std::int64_t first_line) {
    ReadStats& stats = set_.stats;
    std::int64_t line_number = first_line;
    for (std::size_t pos = 0; pos < text.size(); ++line_number) {
      std::size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(pos, end - pos);
      pos = end + 1;
      ++stats.lines;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF files
      if (auto bad = parse_line(line, line_number)) {
        const std::string where = fmt::format("{}:{}: {}", path_, line_number, bad->message);
        if (!options_.skip_bad_lines) {
          return where + " (set data.on_bad_line to \"skip\" to drop such lines)";
        }
        ++stats.skipped;
        if (stats.skipped_examples.size() < kMaxSkippedExamples) {
          stats.skipped_examples.push_back(where);
        }
      }
    }
    return {};
  }

 private:
  std::optional<BadLine> parse_line(std::string_view text, std::int64_t line_number) {
    SampleSet& set = set_;
    ReadStats& stats = set.stats;
    const Layout& layout = layout_;
    if (text.empty()) return BadLine{"empty line"};
    split(text, '\t', fields_);
    if (fields_.size() != layout.fields) {
      std::string msg = fmt::format("expected {} tab-separated fields ({}), got {}", layout.fields,
                                    expected_columns_, fields_.size());
      if (fields_.size() == 1 && text.find(' ') != std::string_view::npos) {
        msg += " (the line contains spaces: fields must be separated by tabs)";
      }
      return BadLine{msg};
    }
    std::uint8_t label = 0;
    if (set.has_labels) {
      const auto f = fields_[layout.label];
      if (f == "1") {
        label = 1;
      } else if (f != "0") {
        std::string msg = fmt::format("label must be 0 or 1, got \"{}\"", f);
        if (line_number == 1) {
          msg += " (if this line names the columns, set data.header to \"yes\")";
        }
        return BadLine{msg};
      }
    }
    if (set.has_items && fields_[layout.item].empty()) return BadLine{"empty item id"};
    if (set.has_users && fields_[layout.user].empty()) return BadLine{"empty user id"};
    std::int64_t time = 0;
    if (set.has_times && !parse_int64(fields_[layout.time], time)) {
      return BadLine{
          fmt::format("time must be an integer timestamp, got \"{}\"", fields_[layout.time])};
    }
    const auto hist = fields_[layout.history];
    // Split and look for stray separators in one pass over the bytes: the history ids are most
    // of a file, and a find() plus a find_first_of(" ;|") per id (a library call per byte)
    // were a third of the parse time.
    tokens_.clear();
    std::size_t first_stray = std::string_view::npos;  // first id containing ' ', ';' or '|'
    if (!hist.empty()) {
      const char sep = options_.history_separator;
      std::size_t start = 0;
      for (std::size_t i = 0; i < hist.size(); ++i) {
        const char ch = hist[i];
        if (ch == sep) {
          tokens_.push_back(hist.substr(start, i - start));
          start = i + 1;
        } else if ((ch == ' ' || ch == ';' || ch == '|') && first_stray == std::string_view::npos) {
          first_stray = tokens_.size();
        }
      }
      tokens_.push_back(hist.substr(start));
    }
    for (std::size_t k = 0; k < tokens_.size(); ++k) {
      if (tokens_[k].empty()) {
        return BadLine{fmt::format(
            "empty item id at position {} of the history (separator '{}' doubled or trailing)", k,
            options_.history_separator)};
      }
      if (k == first_stray) {
        return BadLine{
            fmt::format("history item \"{}\" contains ' ', ';' or '|': items must be "
                        "separated by '{}' (data.history_separator)",
                        tokens_[k], options_.history_separator)};
      }
    }
    // The line is valid: only now touch the encoded arrays, so a skipped line leaves no trace.
    if (set.has_labels) {
      set.labels.push_back(label);
      stats.positives += label;
    }
    if (set.has_times) set.times.push_back(time);
    if (set.has_items) {
      set.items.push_back(resolve_item_(fields_[layout.item], stats));
      ++stats.item_tokens;
    }
    if (set.has_users) {
      const std::int32_t group = user_groups_.intern(fields_[layout.user]);
      set.user_groups.push_back(group);
      set.users.push_back(resolve_user_(group, fields_[layout.user], stats));
    }
    // Keep the most recent items; older ones are never resolved (nor counted in a vocabulary).
    const std::size_t keep = std::min<std::size_t>(tokens_.size(), options_.max_history);
    if (keep < tokens_.size()) ++stats.truncated;
    for (std::size_t k = tokens_.size() - keep; k < tokens_.size(); ++k) {
      set.history.push_back(resolve_item_(tokens_[k], stats));
    }
    stats.item_tokens += static_cast<std::int64_t>(keep);
    set.history_offsets.push_back(static_cast<std::int64_t>(set.history.size()));
    set.line_numbers.push_back(line_number);
    ++stats.samples;
    return std::nullopt;
  }

  const std::string& path_;
  const ReaderOptions& options_;
  const Layout& layout_;
  ResolveItem& resolve_item_;
  ResolveUser& resolve_user_;
  SampleSet& set_;
  StringInterner& user_groups_;
  const std::string expected_columns_;
  std::vector<std::string_view> fields_, tokens_;
};

/// An empty set of the file `path` with the columns of `layout` (the whole file's, or a
/// chunk's).
SampleSet empty_set(const std::string& path, const Layout& layout) {
  SampleSet set;
  set.source = path;
  set.has_labels = layout.label >= 0;
  set.has_items = layout.item >= 0;
  set.has_users = layout.user >= 0;
  set.has_times = layout.time >= 0;
  set.history_offsets.push_back(0);
  return set;
}

/// Appends a chunk's samples to `into`, in file order; the chunk's user groups are re-interned
/// so that group indices follow first appearance in the whole file, as a serial read gives.
void append_chunk(SampleSet& into, StringInterner& user_groups, const SampleSet& part,
                  const StringInterner& part_groups) {
  const auto append = [](auto& to, const auto& from) {
    to.insert(to.end(), from.begin(), from.end());
  };
  append(into.labels, part.labels);
  append(into.items, part.items);
  append(into.users, part.users);
  append(into.times, part.times);
  append(into.line_numbers, part.line_numbers);
  const auto base = static_cast<std::int64_t>(into.history.size());
  append(into.history, part.history);
  for (std::size_t i = 1; i < part.history_offsets.size(); ++i) {
    into.history_offsets.push_back(base + part.history_offsets[i]);
  }
  std::vector<std::int32_t> group_map(static_cast<std::size_t>(part_groups.size()));
  for (std::int32_t g = 0; g < part_groups.size(); ++g) {
    group_map[static_cast<std::size_t>(g)] = user_groups.intern(part_groups.token(g));
  }
  for (const std::int32_t g : part.user_groups) {
    into.user_groups.push_back(group_map[static_cast<std::size_t>(g)]);
  }
  ReadStats& s = into.stats;
  const ReadStats& p = part.stats;
  s.lines += p.lines;
  s.samples += p.samples;
  s.skipped += p.skipped;
  s.positives += p.positives;
  s.truncated += p.truncated;
  s.item_tokens += p.item_tokens;
  s.oov_item_tokens += p.oov_item_tokens;
  s.oov_users += p.oov_users;
  for (const auto& example : p.skipped_examples) {
    if (s.skipped_examples.size() < kMaxSkippedExamples) s.skipped_examples.push_back(example);
  }
}

/// The file is read in blocks of whole lines; a block of at least two chunks' size is parsed
/// by several threads when the resolvers allow it (fixed vocabularies).
constexpr std::size_t kReadBlock = std::size_t(16) << 20;
constexpr std::size_t kMinChunk = std::size_t(1) << 20;

std::int64_t reader_threads(const ReaderOptions& options) {
  if (options.threads > 0) return options.threads;
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::thread::hardware_concurrency()));
}

template <class ResolveItem, class ResolveUser>
SampleSet parse_file(const std::string& path, const ReaderOptions& options,
                     ResolveItem&& resolve_item, ResolveUser&& resolve_user,
                     StringInterner& user_groups, bool thread_safe_resolvers) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot open sample file");
  const Layout layout = layout_of(options.columns);

  SampleSet set = empty_set(path, layout);
  ReadStats& stats = set.stats;
  const std::string expected_columns = join(options.columns, ", ");
  const std::int64_t threads = thread_safe_resolvers ? reader_threads(options) : 1;
  using Parser =
      LineParser<std::remove_reference_t<ResolveItem>, std::remove_reference_t<ResolveUser>>;

  // Parses a block of whole lines; `first_line` is the file line number of its first line.
  const auto parse_block = [&](std::string_view text, std::int64_t first_line) {
    const auto chunks =
        std::min<std::int64_t>(threads, static_cast<std::int64_t>(text.size() / kMinChunk));
    if (chunks <= 1) {
      Parser parser(path, options, layout, resolve_item, resolve_user, set, user_groups);
      const std::string error = parser.parse(text, first_line);
      if (!error.empty()) throw DataError(error);
      return;
    }
    // Cut at line ends near equal sizes; each chunk's first line number from the line ends
    // before it.
    std::vector<std::string_view> pieces;
    std::vector<std::int64_t> first_lines;
    std::size_t begin = 0;
    std::int64_t line = first_line;
    for (std::int64_t k = 0; k < chunks && begin < text.size(); ++k) {
      std::size_t end = text.size();
      if (k + 1 < chunks) {
        end = text.find('\n', std::max(begin, text.size() * (k + 1) / chunks));
        end = end == std::string_view::npos ? text.size() : end + 1;
      }
      const auto piece = text.substr(begin, end - begin);
      pieces.push_back(piece);
      first_lines.push_back(line);
      line += std::count(piece.begin(), piece.end(), '\n');
      begin = end;
    }
    struct Chunk {
      SampleSet set;
      StringInterner groups;
      std::string error;
      std::exception_ptr failure;
    };
    std::vector<Chunk> parts(pieces.size());
    const auto run = [&](std::size_t k) {
      try {
        parts[k].set = empty_set(path, layout);
        Parser parser(path, options, layout, resolve_item, resolve_user, parts[k].set,
                      parts[k].groups);
        parts[k].error = parser.parse(pieces[k], first_lines[k]);
      } catch (...) {
        parts[k].failure = std::current_exception();
      }
    };
    std::vector<std::thread> workers;
    for (std::size_t k = 1; k < pieces.size(); ++k) workers.emplace_back(run, k);
    run(0);
    for (auto& w : workers) w.join();
    // In file order, so that the first bad line reported is the file's first.
    for (auto& part : parts) {
      if (part.failure) std::rethrow_exception(part.failure);
      append_chunk(set, user_groups, part.set, part.groups);
      if (!part.error.empty()) throw DataError(part.error);
    }
  };

  std::string buffer;
  std::size_t carried = 0;  // bytes of an incomplete last line kept from the previous block
  std::int64_t next_line = 1;
  bool at_start = true;
  while (true) {
    buffer.resize(carried + kReadBlock);
    in.read(buffer.data() + carried, static_cast<std::streamsize>(kReadBlock));
    if (in.bad()) throw IoError(path + ": read error");
    const std::size_t size = carried + static_cast<std::size_t>(in.gcount());
    const bool eof = in.eof();
    std::size_t end = size;
    if (!eof) {
      const auto last = std::string_view(buffer.data(), size).rfind('\n');
      if (last == std::string_view::npos) {  // a line longer than the block: read on
        carried = size;
        continue;
      }
      end = last + 1;
    }
    std::string_view text(buffer.data(), end);
    if (at_start && !text.empty()) {
      at_start = false;
      // The first line may name the columns.
      std::string_view first = text.substr(0, text.find('\n'));
      if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
      std::vector<std::string_view> fields;
      split(first, '\t', fields);
      const bool all_roles = std::all_of(fields.begin(), fields.end(), is_role_name);
      if (options.header == HeaderMode::yes ||
          (options.header == HeaderMode::automatic && all_roles)) {
        stats.header = true;
        if (all_roles) {
          std::vector<std::string> names;
          for (auto f : fields) names.push_back(lowercase(f));
          if (names != options.columns) {
            throw DataError(fmt::format(
                "{}:1: the header names the columns [{}] but data.columns is [{}]; the file has "
                "a different layout than the config expects (fix the file or set data.columns)",
                path, join(names, ", "), expected_columns));
          }
        }
        ++stats.lines;
        ++next_line;
        const auto newline = text.find('\n');
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
      }
    }
    if (!text.empty()) {
      parse_block(text, next_line);
      next_line += std::count(text.begin(), text.end(), '\n');
    }
    if (eof) break;
    buffer.erase(0, end);
    carried = size - end;
  }
  if (stats.lines == 0) throw DataError(path + ": file is empty");
  if (stats.samples == 0) {
    throw DataError(fmt::format("{}: no samples ({} lines, {} header, {} skipped as malformed)",
                                path, stats.lines, stats.header ? 1 : 0, stats.skipped));
  }
  if (options.require_both_classes && set.has_labels) {
    if (stats.positives == 0 || stats.positives == stats.samples) {
      throw DataError(
          fmt::format("{}: all {} labels are {}; training and AUC need both "
                      "positive (1) and negative (0) samples",
                      path, stats.samples, stats.positives == 0 ? 0 : 1));
    }
  }
  if (stats.skipped > 0) {
    spdlog::warn("{}: skipped {} malformed line(s) of {}; first: {}", path, stats.skipped,
                 stats.lines, stats.skipped_examples.front());
  }
  set.user_group_count = user_groups.size();
  return set;
}

}  // namespace

TrainingData read_training_file(const std::string& path, const ReaderOptions& options,
                                const VocabOptions& vocab_options) {
  StringInterner raw_items;
  std::vector<std::int64_t> item_counts;
  StringInterner user_groups;
  std::vector<std::int64_t> user_counts;
  auto intern_item = [&](std::string_view s, ReadStats&) {
    const std::int32_t id = raw_items.intern(s);
    if (static_cast<std::size_t>(id) == item_counts.size()) item_counts.push_back(0);
    ++item_counts[static_cast<std::size_t>(id)];
    return id;
  };
  auto count_user = [&](std::int32_t group, std::string_view, ReadStats&) {
    if (static_cast<std::size_t>(group) == user_counts.size()) user_counts.push_back(0);
    ++user_counts[static_cast<std::size_t>(group)];
    return group;
  };
  TrainingData data;
  // Interning and counting mutate shared tables: one thread.
  data.samples = parse_file(path, options, intern_item, count_user, user_groups,
                            /*thread_safe_resolvers=*/false);

  // Remap raw (first-appearance) indices to vocabulary ids in place.
  std::vector<std::int32_t> item_map, user_map;
  data.items = Vocab::build(raw_items, item_counts, vocab_options, item_map);
  data.users = Vocab::build(user_groups, user_counts, vocab_options, user_map);
  auto& s = data.samples;
  for (auto& id : s.items) id = item_map[static_cast<std::size_t>(id)];
  for (auto& id : s.history) id = item_map[static_cast<std::size_t>(id)];
  for (auto& id : s.users) id = user_map[static_cast<std::size_t>(id)];
  s.stats.oov_item_tokens = std::count(s.items.begin(), s.items.end(), Vocab::kOov) +
                            std::count(s.history.begin(), s.history.end(), Vocab::kOov);
  s.stats.oov_users = std::count(s.users.begin(), s.users.end(), Vocab::kOov);
  return data;
}

SampleSet read_sample_file(const std::string& path, const ReaderOptions& options,
                           const Vocab& items, const Vocab& users) {
  StringInterner user_groups;
  auto lookup_item = [&](std::string_view s, ReadStats& stats) {
    const std::int32_t id = items.lookup(s);
    stats.oov_item_tokens += id == Vocab::kOov;
    return id;
  };
  auto lookup_user = [&](std::int32_t, std::string_view s, ReadStats& stats) {
    const std::int32_t id = users.lookup(s);
    stats.oov_users += id == Vocab::kOov;
    return id;
  };
  // Lookups in fixed vocabularies are read-only: large files are parsed by several threads.
  return parse_file(path, options, lookup_item, lookup_user, user_groups,
                    /*thread_safe_resolvers=*/true);
}

std::optional<std::vector<std::string>> header_roles(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<std::string_view> fields;
  split(line, '\t', fields);
  std::vector<std::string> names;
  for (const auto f : fields) {
    if (!is_role_name(f)) return std::nullopt;
    names.push_back(lowercase(f));
  }
  return names;
}

namespace {

template <typename T>
void hash_vector(Sha256& h, const std::vector<T>& v) {
  h.update(v.data(), v.size() * sizeof(T));
}

}  // namespace

std::string samples_sha256(const SampleSet& s) {
  Sha256 h;
  for (const bool flag : {s.has_labels, s.has_items, s.has_users, s.has_times}) {
    h.update(flag ? "1" : "0");
  }
  hash_vector(h, s.labels);
  hash_vector(h, s.items);
  hash_vector(h, s.users);
  hash_vector(h, s.history_offsets);
  hash_vector(h, s.history);
  hash_vector(h, s.times);
  return h.hex();
}

}  // namespace attnrec
