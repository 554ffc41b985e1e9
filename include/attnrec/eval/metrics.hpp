#pragma once
/// \file Click-prediction metrics over a whole set (never averaged over batches).

#include <cstdint>
#include <optional>
#include <vector>

namespace attnrec {

/// Area under the ROC curve, exact, with tied scores given their average rank (so a constant
/// score gives 0.5). nullopt when the labels hold only one class.
std::optional<double> auc(const std::vector<double>& scores,
                          const std::vector<std::uint8_t>& labels);

/// Group AUC: per-user AUC weighted by the user's impressions. Users with only one class are
/// excluded (their AUC is undefined) and counted.
struct GaucResult {
  std::optional<double> value;  ///< nullopt when no user has both classes
  std::int64_t users_used = 0;
  std::int64_t users_excluded = 0;  ///< single-class users
};
GaucResult gauc(const std::vector<double>& scores, const std::vector<std::uint8_t>& labels,
                const std::vector<std::int32_t>& groups);

/// Mean binary cross-entropy of probabilities, each clipped to [eps, 1 - eps].
double logloss(const std::vector<double>& probabilities, const std::vector<std::uint8_t>& labels,
               double eps = 1e-7);

/// Threshold metrics: a sample is predicted positive when its probability >= threshold.
/// Precision/recall/F1 are 0 when undefined (no predicted / no actual positives).
struct ThresholdMetrics {
  double accuracy = 0, precision = 0, recall = 0, f1 = 0;
};
ThresholdMetrics threshold_metrics(const std::vector<double>& probabilities,
                                   const std::vector<std::uint8_t>& labels, double threshold);

}  // namespace attnrec
