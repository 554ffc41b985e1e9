#include "attnrec/data/dataset.hpp"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>
#include <fstream>
#include <spdlog/spdlog.h>

#include "attnrec/util/error.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

ReaderOptions reader_options(const DataConfig& data) {
  ReaderOptions o;
  o.columns = data.columns;
  o.header = data.header;
  o.history_separator = data.history_separator.at(0);
  o.max_history = data.max_history;
  o.skip_bad_lines = data.on_bad_line == "skip";
  return o;
}

namespace {

constexpr std::size_t kMaxSkippedExamples = 5;

/// A line-level problem; becomes "file:line: message".
struct BadLine {
  std::string message;
};

bool is_role_name(std::string_view s) {
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower == "label" || lower == "user" || lower == "item" || lower == "history" ||
         lower == "time" || lower == "ignore";
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
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

/// Shared parser. `Resolve` turns item ids into int32 (interning while building a vocabulary,
/// looking up with a fixed one); users always get a per-file group index, and `ResolveUser`
/// maps that group's string to a vocabulary id.
template <class ResolveItem, class ResolveUser>
SampleSet parse_file(const std::string& path, const ReaderOptions& options,
                     ResolveItem&& resolve_item, ResolveUser&& resolve_user,
                     StringInterner& user_groups) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot open sample file");
  const Layout layout = layout_of(options.columns);

  SampleSet set;
  set.source = path;
  set.has_labels = layout.label >= 0;
  set.has_items = layout.item >= 0;
  set.has_users = layout.user >= 0;
  set.has_times = layout.time >= 0;
  set.history_offsets.push_back(0);
  ReadStats& stats = set.stats;

  std::string line;
  std::vector<std::string_view> fields;
  std::vector<std::string_view> tokens;
  const std::string expected_columns = join(options.columns, ", ");

  auto parse_line = [&](std::string_view text) -> std::optional<BadLine> {
    if (text.empty()) return BadLine{"empty line"};
    split(text, '\t', fields);
    if (fields.size() != layout.fields) {
      std::string msg = fmt::format("expected {} tab-separated fields ({}), got {}",
                                    layout.fields, expected_columns, fields.size());
      if (fields.size() == 1 && text.find(' ') != std::string_view::npos) {
        msg += " (the line contains spaces: fields must be separated by tabs)";
      }
      return BadLine{msg};
    }
    std::uint8_t label = 0;
    if (set.has_labels) {
      const auto f = fields[layout.label];
      if (f == "1") {
        label = 1;
      } else if (f != "0") {
        std::string msg = fmt::format("label must be 0 or 1, got \"{}\"", f);
        if (stats.lines == 1) msg += " (if this line names the columns, set data.header to \"yes\")";
        return BadLine{msg};
      }
    }
    if (set.has_items && fields[layout.item].empty()) return BadLine{"empty item id"};
    if (set.has_users && fields[layout.user].empty()) return BadLine{"empty user id"};
    std::int64_t time = 0;
    if (set.has_times && !parse_int64(fields[layout.time], time)) {
      return BadLine{fmt::format("time must be an integer timestamp, got \"{}\"",
                                 fields[layout.time])};
    }
    const auto hist = fields[layout.history];
    tokens.clear();
    if (!hist.empty()) split(hist, options.history_separator, tokens);
    for (std::size_t k = 0; k < tokens.size(); ++k) {
      if (tokens[k].empty()) {
        return BadLine{fmt::format(
            "empty item id at position {} of the history (separator '{}' doubled or trailing)", k,
            options.history_separator)};
      }
      if (tokens[k].find_first_of(" ;|") != std::string_view::npos) {
        return BadLine{fmt::format("history item \"{}\" contains ' ', ';' or '|': items must be "
                                   "separated by '{}' (data.history_separator)",
                                   tokens[k], options.history_separator)};
      }
    }
    // The line is valid: only now touch the encoded arrays, so a skipped line leaves no trace.
    if (set.has_labels) {
      set.labels.push_back(label);
      stats.positives += label;
    }
    if (set.has_times) set.times.push_back(time);
    if (set.has_items) {
      set.items.push_back(resolve_item(fields[layout.item], stats));
      ++stats.item_tokens;
    }
    if (set.has_users) {
      const std::int32_t group = user_groups.intern(fields[layout.user]);
      set.user_groups.push_back(group);
      set.users.push_back(resolve_user(group, fields[layout.user], stats));
    }
    // Keep the most recent items; older ones are never resolved (nor counted in a vocabulary).
    const std::size_t keep = std::min<std::size_t>(tokens.size(), options.max_history);
    if (keep < tokens.size()) ++stats.truncated;
    for (std::size_t k = tokens.size() - keep; k < tokens.size(); ++k) {
      set.history.push_back(resolve_item(tokens[k], stats));
    }
    stats.item_tokens += static_cast<std::int64_t>(keep);
    set.history_offsets.push_back(static_cast<std::int64_t>(set.history.size()));
    set.line_numbers.push_back(stats.lines);
    ++stats.samples;
    return std::nullopt;
  };

  while (std::getline(in, line)) {
    ++stats.lines;
    std::string_view text(line);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);  // CRLF files
    if (stats.lines == 1) {
      split(text, '\t', fields);
      const bool all_roles = std::all_of(fields.begin(), fields.end(), is_role_name);
      if (options.header == "yes" || (options.header == "auto" && all_roles)) {
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
        continue;
      }
    }
    if (auto bad = parse_line(text)) {
      const std::string where = fmt::format("{}:{}: {}", path, stats.lines, bad->message);
      if (!options.skip_bad_lines) {
        throw DataError(where + " (set data.on_bad_line to \"skip\" to drop such lines)");
      }
      ++stats.skipped;
      if (stats.skipped_examples.size() < kMaxSkippedExamples) {
        stats.skipped_examples.push_back(where);
      }
    }
  }
  if (in.bad()) throw IoError(path + ": read error");
  if (stats.lines == 0) throw DataError(path + ": file is empty");
  if (stats.samples == 0) {
    throw DataError(fmt::format("{}: no samples ({} lines, {} header, {} skipped as malformed)",
                                path, stats.lines, stats.header ? 1 : 0, stats.skipped));
  }
  if (options.require_both_classes && set.has_labels) {
    if (stats.positives == 0 || stats.positives == stats.samples) {
      throw DataError(fmt::format("{}: all {} labels are {}; training and AUC need both "
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
  data.samples = parse_file(path, options, intern_item, count_user, user_groups);

  // Remap raw (first-appearance) indices to vocabulary ids in place.
  std::vector<std::int32_t> item_map, user_map;
  data.items = Vocab::build(raw_items, item_counts, vocab_options, item_map);
  data.users = Vocab::build(user_groups, user_counts, vocab_options, user_map);
  auto& s = data.samples;
  for (auto& id : s.items) id = item_map[static_cast<std::size_t>(id)];
  for (auto& id : s.history) id = item_map[static_cast<std::size_t>(id)];
  for (auto& id : s.users) id = user_map[static_cast<std::size_t>(id)];
  s.stats.oov_item_tokens =
      std::count(s.items.begin(), s.items.end(), Vocab::kOov) +
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
  return parse_file(path, options, lookup_item, lookup_user, user_groups);
}

}  // namespace attnrec
