#include "attnrec/eval/curves.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace attnrec {

namespace {

/// Sample indices by score, highest first (ties in index order: deterministic).
std::vector<std::size_t> by_score_descending(const std::vector<double>& scores) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  return order;
}

/// Calls `point(true positives, false positives)` after each run of tied scores, highest first.
template <class Point>
void sweep_thresholds(const std::vector<double>& scores, const std::vector<std::uint8_t>& labels,
                      Point point) {
  const auto order = by_score_descending(scores);
  double tp = 0, fp = 0;
  for (std::size_t k = 0; k < order.size(); ++k) {
    (labels[order[k]] ? tp : fp) += 1.0;
    if (k + 1 == order.size() || scores[order[k + 1]] != scores[order[k]]) point(tp, fp);
  }
}

}  // namespace

Curve roc_curve(const std::vector<double>& scores, const std::vector<std::uint8_t>& labels) {
  const double positives = std::accumulate(labels.begin(), labels.end(), 0.0);
  const double negatives = static_cast<double>(labels.size()) - positives;
  Curve c;
  if (positives == 0 || negatives == 0) return c;
  c.x.push_back(0.0);
  c.y.push_back(0.0);
  sweep_thresholds(scores, labels, [&](double tp, double fp) {
    c.x.push_back(fp / negatives);
    c.y.push_back(tp / positives);
  });
  return c;
}

Curve precision_recall_curve(const std::vector<double>& scores,
                             const std::vector<std::uint8_t>& labels) {
  const double positives = std::accumulate(labels.begin(), labels.end(), 0.0);
  Curve c;
  if (positives == 0) return c;
  sweep_thresholds(scores, labels, [&](double tp, double fp) {
    c.x.push_back(tp / positives);
    c.y.push_back(tp / (tp + fp));
  });
  return c;
}

double average_precision(const Curve& pr) {
  double ap = 0.0, recall = 0.0;
  for (std::size_t i = 0; i < pr.x.size(); ++i) {
    ap += (pr.x[i] - recall) * pr.y[i];
    recall = pr.x[i];
  }
  return ap;
}

Curve thin_curve(const Curve& curve, std::size_t points) {
  const std::size_t n = curve.x.size();
  if (n <= points || points < 2) return curve;
  Curve out;
  for (std::size_t k = 0; k < points; ++k) {
    const std::size_t i = k * (n - 1) / (points - 1);
    out.x.push_back(curve.x[i]);
    out.y.push_back(curve.y[i]);
  }
  return out;
}

Calibration calibration(const std::vector<double>& probabilities,
                        const std::vector<std::uint8_t>& labels, int bins) {
  Calibration c;
  c.mean_predicted.assign(bins, 0.0);
  c.observed_rate.assign(bins, 0.0);
  c.count.assign(bins, 0);
  for (std::size_t i = 0; i < probabilities.size(); ++i) {
    const int b = std::clamp(static_cast<int>(probabilities[i] * bins), 0, bins - 1);
    c.mean_predicted[b] += probabilities[i];
    c.observed_rate[b] += labels[i];
    ++c.count[b];
  }
  const double n = static_cast<double>(probabilities.size());
  for (int b = 0; b < bins; ++b) {
    if (c.count[b] == 0) continue;
    c.mean_predicted[b] /= static_cast<double>(c.count[b]);
    c.observed_rate[b] /= static_cast<double>(c.count[b]);
    c.ece +=
        static_cast<double>(c.count[b]) / n * std::abs(c.observed_rate[b] - c.mean_predicted[b]);
  }
  return c;
}

std::vector<std::int64_t> histogram_by_label(const std::vector<double>& values,
                                             const std::vector<std::uint8_t>& labels,
                                             std::uint8_t label, int bins, double lo, double hi) {
  std::vector<std::int64_t> counts(bins, 0);
  const double width = hi > lo ? (hi - lo) / bins : 1.0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (labels[i] != label) continue;
    ++counts[std::clamp(static_cast<int>((values[i] - lo) / width), 0, bins - 1)];
  }
  return counts;
}

}  // namespace attnrec
