#pragma once
/// \file `attnrec check-data`: leakage checks of sample files against the interaction log they
/// came from. Run automatically by `attnrec preprocess` on its own output.
///
/// Checks (each violation kind is counted, with the first examples as "file:line: what"):
/// - `history_item_not_in_log`: a history item the user never interacted with;
/// - `history_not_before_target`: a history item whose interaction does not precede the target
///   (for positives: earlier in the user's timeline, ties in time ordered as in the log; for
///   negatives, which share their positive's history: timestamp <= the sample's time);
/// - `history_out_of_order`: history not oldest-first;
/// - `target_not_in_log`: a positive whose (user, item, time) is not in the log;
/// - `target_in_history`: a validation/test positive whose item is in its own history without
///   an earlier interaction of the user with it (repeat consumption, kept with `--dedup none`,
///   is counted in checked.repeat_targets_in_history instead);
/// - `split_order`: a user's training target later than one of their validation/test targets
///   (or validation later than test);
/// - `negative_interacted`: a negative (or ranking candidate) the user interacted with;
/// - `vocab_not_from_train`: a vocabulary id that never occurs in the training file.

#include <nlohmann/json.hpp>
#include <string>

namespace attnrec {

struct CheckDataOptions {
  /// A `preprocess` output directory: supplies every path below that is left empty.
  std::string dir;
  std::string train, valid, test;
  /// The kept interaction log (`user<TAB>item<TAB>time`, timeline order per user).
  std::string interactions;
  /// Optional frozen ranking candidates (test_candidates.tsv).
  std::string candidates;
  /// Optional frozen candidates of the validation positives (valid_candidates.tsv).
  std::string valid_candidates;
  /// Optional item vocabulary (e.g. RUN_DIR/items.vocab) to check against the training file.
  std::string vocab;
  /// Examples kept per violation kind. Default: 5
  std::size_t max_examples = 5;

  /// These options with every empty path filled in from `dir` (the candidates files only when
  /// they exist there).
  CheckDataOptions resolved() const;
};

/// Runs every check; returns the report {"ok", "checked": {...}, "violations": {kind: {count,
/// examples}}}. Malformed input files throw DataError with file:line.
nlohmann::json check_data(const CheckDataOptions& options);

/// Human-readable summary of a report.
std::string format_leakage_report(const nlohmann::json& report);

}  // namespace attnrec
