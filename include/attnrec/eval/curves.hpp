#pragma once
/// \file The curves behind the report's charts: ROC, precision-recall and calibration
/// (reliability) over a whole set of scores and 0/1 labels, and score histograms.

#include <cstdint>
#include <vector>

namespace attnrec {

/// Points of a curve, in order.
struct Curve {
  std::vector<double> x, y;
};

/// ROC curve: (false positive rate, true positive rate) from (0, 0) to (1, 1), one point per
/// distinct score (tied scores move together, a diagonal step). Empty with only one class.
Curve roc_curve(const std::vector<double>& scores, const std::vector<std::uint8_t>& labels);

/// Precision-recall curve: (recall, precision), one point per distinct score, highest first.
/// Empty without positives.
Curve precision_recall_curve(const std::vector<double>& scores,
                             const std::vector<std::uint8_t>& labels);

/// Average precision: sum over the curve's points of (recall step) * precision.
double average_precision(const Curve& precision_recall);

/// At most `points` points of `curve`, evenly spaced along its index, first and last kept.
Curve thin_curve(const Curve& curve, std::size_t points);

/// Reliability diagram: probabilities in `bins` equal-width bins over [0, 1].
struct Calibration {
  std::vector<double> mean_predicted;  ///< per bin (0 for an empty bin)
  std::vector<double> observed_rate;   ///< fraction of positives per bin (0 for an empty bin)
  std::vector<std::int64_t> count;     ///< samples per bin
  /// Expected calibration error: sum over bins of count/N * |observed - mean predicted|.
  double ece = 0.0;
};
Calibration calibration(const std::vector<double>& probabilities,
                        const std::vector<std::uint8_t>& labels, int bins);

/// Counts of `values` in `bins` equal-width bins over [lo, hi] (values outside are clamped),
/// only the samples whose label is `label`.
std::vector<std::int64_t> histogram_by_label(const std::vector<double>& values,
                                             const std::vector<std::uint8_t>& labels,
                                             std::uint8_t label, int bins, double lo, double hi);

}  // namespace attnrec
