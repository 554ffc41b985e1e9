#include "attnrec/data/vocab.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <charconv>
#include <fstream>
#include <numeric>
#include <sstream>

#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

Vocab Vocab::build(const StringInterner& raw, const std::vector<std::int64_t>& counts,
                   const VocabOptions& options, std::vector<std::int32_t>& raw_to_id) {
  std::vector<std::int32_t> order(static_cast<std::size_t>(raw.size()));
  std::iota(order.begin(), order.end(), 0);
  // Most frequent first; ties keep first appearance so the vocabulary is deterministic.
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int32_t a, std::int32_t b) { return counts[a] > counts[b]; });
  Vocab vocab;
  raw_to_id.assign(order.size(), kOov);
  for (const std::int32_t r : order) {
    const bool frequent = counts[r] >= options.min_count;
    const bool room =
        options.max_size == 0 || static_cast<std::int64_t>(vocab.tokens_.size()) < options.max_size;
    if (frequent && room) {
      raw_to_id[r] = static_cast<std::int32_t>(vocab.size());
      vocab.add(raw.token(r), counts[r]);
    } else {
      vocab.counts_[kOov] += counts[r];
    }
  }
  return vocab;
}

void Vocab::add(std::string_view token, std::int64_t count) {
  const std::int32_t before = static_cast<std::int32_t>(tokens_index_.size());
  const std::int32_t index = tokens_index_.intern(token);
  if (index != before) throw DataError("duplicate vocabulary entry \"" + std::string(token) + "\"");
  tokens_.push_back(tokens_index_.token(index));
  counts_.push_back(count);
}

std::int32_t Vocab::lookup(std::string_view token) const {
  const std::int32_t index = tokens_index_.find(token);
  return index < 0 ? kOov : index + kReserved;
}

std::string_view Vocab::token(std::int32_t id) const {
  if (id == kPad) return "<pad>";
  if (id == kOov) return "<oov>";
  return tokens_[static_cast<std::size_t>(id - kReserved)];
}

std::string Vocab::to_text() const {
  std::string out;
  for (std::int32_t id = 0; id < size(); ++id) {
    out += token(id);
    out += '\t';
    out += std::to_string(count(id));
    out += '\n';
  }
  return out;
}

void Vocab::save(const std::string& path) const { write_file_atomic(path, to_text()); }

Vocab Vocab::load(const std::string& path) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const IoError&) {
    throw CheckpointError(path + ": cannot open vocabulary file");
  }
  return from_text(text, path);
}

Vocab Vocab::from_text(const std::string& text, const std::string& path) {
  std::istringstream in(text);
  Vocab vocab;
  std::string line;
  std::int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    const auto tab = line.rfind('\t');
    std::int64_t count = -1;
    if (tab != std::string::npos) {
      const char* begin = line.data() + tab + 1;
      const char* end = line.data() + line.size();
      auto [ptr, ec] = std::from_chars(begin, end, count);
      if (ec != std::errc() || ptr != end) count = -1;
    }
    if (count < 0) {
      throw CheckpointError(
          fmt::format("{}:{}: expected \"id<TAB>count\", got \"{}\"", path, line_number, line));
    }
    const std::string_view token(line.data(), tab);
    if (line_number <= kReserved) {
      const std::string_view expected = line_number == 1 ? "<pad>" : "<oov>";
      if (token != expected) {
        throw CheckpointError(fmt::format("{}:{}: expected the reserved entry \"{}\", got \"{}\"",
                                          path, line_number, expected, token));
      }
      vocab.counts_[static_cast<std::size_t>(line_number - 1)] = count;
      continue;
    }
    try {
      vocab.add(token, count);
    } catch (const DataError& e) {
      throw CheckpointError(fmt::format("{}:{}: {}", path, line_number, e.what()));
    }
  }
  if (line_number < kReserved) {
    throw CheckpointError(path + ": truncated vocabulary file (no <pad>/<oov> entries)");
  }
  return vocab;
}

}  // namespace attnrec
