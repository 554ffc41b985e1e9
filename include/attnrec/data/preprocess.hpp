#pragma once
/// \file `attnrec preprocess`: raw interaction logs -> train/valid/test sample files.
///
/// Pipeline: stream the log (one pass, ids interned, one 32-byte event per kept interaction),
/// filter by rating/behaviour, deduplicate (user, item) pairs, k-core filter users and items,
/// order each user's events by (timestamp, file order), split (leave-last-out or global
/// temporal), build each target's history from the user's earlier events, draw negatives from
/// items the user never interacted with, and write the sample files, the frozen ranking
/// candidates, the kept interaction log, stats.json and protocol.json. Output is identical for
/// the same input, options and seed.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace attnrec {

/// Every choice of a preprocessing run; all of it is recorded in protocol.json.
struct PreprocessOptions {
  /// Interaction log to read.
  std::string input;
  /// Directory for the outputs (created).
  std::string out_dir;
  /// auto | movielens (ratings.dat, `u::i::r::t`) | movielens_tsv (u.data, `u\ti\tr\tt`) |
  /// sequence (`user item1 item2 ...` per line, oldest first) | amazon (JSON lines with
  /// reviewerID, asin, unixReviewTime, optional overall) | taobao (`user,item,category,behavior,
  /// timestamp`) | csv (generic, see `csv_columns`). Default: "auto"
  std::string format = "auto";
  /// Generic csv: field delimiter, one character ("\t" for tab). Default: ","
  std::string delimiter = ",";
  /// Generic csv: `role=COLUMN` pairs for roles user, item (required), time, rating, category;
  /// COLUMN is a 0-based index or a header name (a name implies a header line).
  std::vector<std::string> csv_columns;
  /// Generic csv with index-only mapping: whether the first line is a header. Default: false
  bool csv_header = false;
  /// Keep only interactions with rating >= this value (formats with a rating). Default: none
  std::optional<double> min_rating;
  /// Taobao / csv with a behavior column: keep only these behaviours (empty: all).
  std::vector<std::string> behaviors;
  /// first | last | none: which of repeated (user, item) interactions to keep. Default: "first"
  std::string dedup = "first";
  /// k-core: drop users with fewer interactions, repeatedly. Default: 0 (off)
  std::int64_t min_user_interactions = 0;
  /// k-core: drop items with fewer interactions, repeatedly. Default: 0 (off)
  std::int64_t min_item_interactions = 0;
  /// Most recent events kept in a history. Default: 50
  std::int64_t max_history = 50;
  /// Targets with fewer earlier events are not turned into samples. Default: 1
  std::int64_t min_history = 1;
  /// leave_last_out | temporal. Default: "leave_last_out"
  std::string split = "leave_last_out";
  /// temporal: share of events (by timestamp) in the validation / test split. Default: 0.1
  double valid_fraction = 0.1;
  double test_fraction = 0.1;
  /// Negative samples per positive (all splits). Default: 1
  std::int64_t negatives = 1;
  /// uniform | popularity (training-split frequency). Default: "uniform"
  std::string sampling = "uniform";
  /// Frozen negatives per test positive for sampled ranking (0: no candidates file).
  /// Default: 100
  std::int64_t ranking_negatives = 100;
  /// uniform | popularity, for the ranking candidates. Default: "uniform"
  std::string ranking_sampling = "uniform";
  /// Seed of all sampling. Default: 42
  std::uint64_t seed = 42;

  /// Throws UsageError naming the option when a value or combination is invalid.
  void validate() const;
  nlohmann::json to_json() const;
};

/// The input formats preprocess reads.
const std::vector<std::string>& preprocess_formats();

/// Names of the files preprocess() may write into its output directory.
const std::vector<std::string>& preprocess_output_files();

/// True when every output file present in `dir` is as an earlier `attnrec preprocess` wrote it:
/// its protocol.json is preprocess's (an input record and outputs_sha256) and each hashed file
/// still has its hash. Then a new preprocess may replace them; anything else is somebody's data.
bool holds_unchanged_preprocess_output(const std::string& dir);

/// Refuses (UsageError, naming the first file) to replace output files in `dir` that are not
/// the unchanged output of an earlier preprocess, unless `overwrite`.
void check_preprocess_outputs(const std::string& dir, bool overwrite);

/// Guesses the format from the first non-empty line of `path`; throws DataError when unsure.
std::string detect_format(const std::string& path);

/// Runs the pipeline; returns stats.json's content. Runs check_data() on the result and throws
/// DataError when it finds leakage (which would be a bug).
nlohmann::json preprocess(const PreprocessOptions& options);

}  // namespace attnrec
