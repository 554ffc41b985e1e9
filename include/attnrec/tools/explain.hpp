#pragma once
/// \file `attnrec explain`: which history items drove a prediction, and whether the attention
/// weights say so.
///
/// For each explained sample (its history as the model sees it: the last data.max_history
/// items, oldest first) attnrec reports the probability and logit, every position's attention
/// weight, and two counterfactuals per position:
/// - leave-one-out: the logit change when the item is removed from the history and the model
///   re-run (Δ = logit with the item − logit without it: positive when the item supported the
///   prediction);
/// - attention-only: the logit change when only that position's attention weight is zeroed and
///   the others renormalised (the encoder still saw the item: for an LSTM or transformer, later
///   states carry it);
/// and controls: leave-one-out of the top-weighted item, of a random item and of the
/// lowest-weighted item, and Kendall's τ between the weights and the leave-one-out changes.
/// A summary over many samples compares the top-weighted item with the random control.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attnrec/eval/evaluation.hpp"

namespace attnrec {

struct ExplainRequest {
  ScoringRequest scoring;  ///< the model and the sample file
  /// 1-based line numbers of the file to explain: "3,7,10-20" (empty: the first `limit`).
  std::string lines;
  /// Samples to explain when `lines` is empty (0: every sample of the file).
  std::int64_t limit = 10;
  std::int64_t top_k = 5;  ///< positions listed per sample, by weight
  std::string oracle;      ///< generator's oracle.json: planted positions (summary hit rate)
  std::uint64_t seed = 1;  ///< the random control's draws
  bool examples = true;    ///< keep per-sample results in the JSON (false: the summary only)
};

/// Kendall's τ-b between `a` and `b` (ties handled; 0 when either is constant).
double kendall_tau(const std::vector<double>& a, const std::vector<double>& b);

/// "3,7,10-20" -> {3, 7, 10, ..., 20}; a UsageError naming `what` on anything else.
std::vector<std::int64_t> parse_line_list(const std::string& text, const std::string& what);

/// Runs the explanations: {"examples": [...], "summary": {...}, "checkpoint", "data"}.
nlohmann::json run_explain(const ExplainRequest& request);

/// A readable table of run_explain()'s result.
std::string format_explanations(const nlohmann::json& result, std::int64_t top_k);

}  // namespace attnrec
