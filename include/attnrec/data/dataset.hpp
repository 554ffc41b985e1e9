#pragma once
/// \file Reading sample files (format in data/README.md) into compact encoded arrays.
/// Memory is that of the encoded data: int32 ids, a flattened history array with offsets, and
/// each distinct id string stored once.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attnrec/config/config.hpp"
#include "attnrec/data/vocab.hpp"

namespace attnrec {

/// How sample files are parsed; derived from DataConfig by reader_options().
struct ReaderOptions {
  std::vector<std::string> columns = {"label", "user", "item", "history"};
  HeaderMode header = HeaderMode::automatic;
  char history_separator = ',';
  std::int64_t max_history = 50;
  bool skip_bad_lines = false;
  /// Training and evaluation need both classes; prediction does not read labels at all.
  bool require_both_classes = true;
  /// Threads parsing a file read with fixed vocabularies (0: one per hardware thread); files
  /// under 2 MiB, and training files (which build the vocabularies), use one. The result does
  /// not depend on it.
  std::int64_t threads = 0;
};

/// `threads`: parse threads for files read with fixed vocabularies (0: one per hardware
/// thread); the commands pass their intra-op thread count, so `--threads` bounds reading too.
ReaderOptions reader_options(const DataConfig& data, std::int64_t threads = 0);

/// The roles a header line names (lower-cased), when every field is a role name
/// (label, user, item, history, time, ignore); nullopt for a data line.
std::optional<std::vector<std::string>> header_roles(std::string_view line);

/// What reading a file found.
struct ReadStats {
  std::int64_t lines = 0;  ///< physical lines, header included
  std::int64_t samples = 0;
  std::int64_t skipped = 0;  ///< malformed lines dropped (on_bad_line = skip)
  bool header = false;
  std::int64_t positives = 0;
  std::int64_t truncated = 0;    ///< histories cut to max_history
  std::int64_t item_tokens = 0;  ///< candidate + kept history ids
  std::int64_t oov_item_tokens = 0;
  std::int64_t oov_users = 0;                 ///< samples whose user is out of vocabulary
  std::vector<std::string> skipped_examples;  ///< the first few problems, "file:line: what"

  double oov_rate() const {
    return item_tokens == 0 ? 0.0 : static_cast<double>(oov_item_tokens) / item_tokens;
  }
};

/// Encoded samples of one file.
struct SampleSet {
  std::string source;
  bool has_labels = false;
  bool has_items = false;
  bool has_users = false;
  bool has_times = false;
  std::vector<std::uint8_t> labels;           ///< 0/1, one per sample (when has_labels)
  std::vector<std::int32_t> items;            ///< candidate item ids (when has_items)
  std::vector<std::int32_t> users;            ///< user vocabulary ids (when has_users)
  std::vector<std::int32_t> user_groups;      ///< per-file user index, for GAUC (when has_users)
  std::vector<std::int64_t> history_offsets;  ///< size samples + 1
  std::vector<std::int32_t> history;          ///< item ids, oldest first, flattened
  std::vector<std::int64_t> line_numbers;     ///< 1-based source line of each sample
  std::vector<std::int64_t> times;            ///< target event timestamps (when has_times)
  ReadStats stats;

  std::int64_t size() const { return static_cast<std::int64_t>(history_offsets.size()) - 1; }
  std::int64_t history_length(std::int64_t i) const {
    return history_offsets[i + 1] - history_offsets[i];
  }
  /// Distinct users of this file (GAUC groups).
  std::int64_t user_group_count = 0;
};

/// SHA-256 (hex) of what a sample file encodes: labels, items, users, histories and times, in
/// order (not its formatting). A checkpoint records it for its training file, so that a resume
/// notices an edited, reordered or replaced file even when its vocabulary is unchanged.
std::string samples_sha256(const SampleSet& samples);

/// The training split with the vocabularies built from it.
struct TrainingData {
  SampleSet samples;
  Vocab items;
  Vocab users;
};

/// Reads the training file and builds the item and user vocabularies from it.
TrainingData read_training_file(const std::string& path, const ReaderOptions& options,
                                const VocabOptions& vocab_options);

/// Reads a file with fixed vocabularies (validation, test, evaluate, predict). Unknown ids map
/// to OOV and are counted in the stats.
SampleSet read_sample_file(const std::string& path, const ReaderOptions& options,
                           const Vocab& items, const Vocab& users);

}  // namespace attnrec
