#pragma once
/// \file Vocabularies of item and user ids. Index 0 is padding, 1 is out-of-vocabulary (OOV);
/// real ids follow, most frequent first. Built from the training split only and saved as a
/// plain text file that travels with the run and its checkpoints.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "attnrec/data/interner.hpp"

namespace attnrec {

/// Limits applied when a vocabulary is built.
struct VocabOptions {
  std::int64_t min_count = 1;  ///< ids seen fewer times map to OOV
  std::int64_t max_size = 0;   ///< most real ids kept (besides padding and OOV); 0 = no cap
};

class Vocab {
 public:
  static constexpr std::int32_t kPad = 0;
  static constexpr std::int32_t kOov = 1;
  static constexpr std::int32_t kReserved = 2;

  Vocab() = default;

  /// Builds a vocabulary from ids seen in training. `counts[i]` is the frequency of
  /// `raw.token(i)`. Fills `raw_to_id` (raw index -> vocabulary id, kOov when dropped).
  static Vocab build(const StringInterner& raw, const std::vector<std::int64_t>& counts,
                     const VocabOptions& options, std::vector<std::int32_t>& raw_to_id);

  /// Number of ids including padding and OOV (the embedding table's size).
  std::int64_t size() const { return kReserved + tokens_.size(); }
  /// The id of `token`, kOov when unknown.
  std::int32_t lookup(std::string_view token) const;
  /// The string of id `id` ("<pad>" and "<oov>" for the reserved ids).
  std::string_view token(std::int32_t id) const;
  /// Training-set frequency of `id` (for OOV: the number of occurrences mapped to OOV).
  std::int64_t count(std::int32_t id) const { return counts_[static_cast<std::size_t>(id)]; }

  /// The file format as a string: "token<TAB>count" lines, line number = id.
  std::string to_text() const;
  /// Parses to_text() output; errors name `source` and the line.
  static Vocab from_text(const std::string& text, const std::string& source);

  /// Writes "token<TAB>count" lines, line number = id; lines 0 and 1 are <pad> and <oov>.
  void save(const std::string& path) const;
  /// Reads a file written by save(); errors name the file and line.
  static Vocab load(const std::string& path);

 private:
  void add(std::string_view token, std::int64_t count);

  StringInterner tokens_index_;
  std::vector<std::string_view> tokens_;
  std::vector<std::int64_t> counts_ = {0, 0};
};

}  // namespace attnrec
