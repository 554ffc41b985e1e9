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

#include "attnrec/config/config.hpp"

namespace attnrec {

/// Every choice of a preprocessing run; all of it is recorded in protocol.json. The options
/// themselves are the `preprocess` section of the one option table (config/fields.cpp: names,
/// defaults, ranges, choices and help; `attnrec config --doc`), whose checks apply to every value
/// read from a config, `--set` or the command's flags.
struct PreprocessOptions : PreprocessConfig {
  /// Every option at the table's default.
  PreprocessOptions();
  explicit PreprocessOptions(const PreprocessConfig& settings) : PreprocessConfig(settings) {}

  /// Interaction log to read.
  std::string input;
  /// Directory for the outputs (created).
  std::string out_dir;

  /// The checks that involve several options (and the input and output); throws UsageError
  /// naming the options.
  void validate() const;
  nlohmann::json to_json() const;
};

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
LogFormat detect_format(const std::string& path);

/// Runs the pipeline; returns stats.json's content. Runs check_data() on the result and throws
/// DataError when it finds leakage (which would be a bug).
nlohmann::json preprocess(const PreprocessOptions& options);

}  // namespace attnrec
