#include "attnrec/eval/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "attnrec/util/error.hpp"

namespace attnrec {

namespace {

void check_sizes(std::size_t a, std::size_t b) {
  if (a != b) throw Error("metrics: scores and labels differ in length");
}

/// AUC of the samples `idx` (Mann-Whitney U with average ranks for ties).
std::optional<double> auc_of(const std::vector<double>& scores,
                             const std::vector<std::uint8_t>& labels,
                             std::vector<std::int64_t>& idx) {
  std::sort(idx.begin(), idx.end(),
            [&](std::int64_t a, std::int64_t b) { return scores[a] < scores[b]; });
  double positive_rank_sum = 0;
  std::int64_t positives = 0;
  const std::int64_t n = static_cast<std::int64_t>(idx.size());
  for (std::int64_t i = 0; i < n;) {
    std::int64_t j = i;
    while (j < n && scores[idx[j]] == scores[idx[i]]) ++j;
    const double average_rank = 0.5 * static_cast<double>(i + 1 + j);  // ranks i+1..j
    for (std::int64_t k = i; k < j; ++k) {
      if (labels[idx[k]]) {
        positive_rank_sum += average_rank;
        ++positives;
      }
    }
    i = j;
  }
  const std::int64_t negatives = n - positives;
  if (positives == 0 || negatives == 0) return std::nullopt;
  const double p = static_cast<double>(positives);
  return (positive_rank_sum - p * (p + 1) / 2) / (p * static_cast<double>(negatives));
}

}  // namespace

std::optional<double> auc(const std::vector<double>& scores,
                          const std::vector<std::uint8_t>& labels) {
  check_sizes(scores.size(), labels.size());
  std::vector<std::int64_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  return auc_of(scores, labels, idx);
}

GaucResult gauc(const std::vector<double>& scores, const std::vector<std::uint8_t>& labels,
                const std::vector<std::int32_t>& groups) {
  check_sizes(scores.size(), labels.size());
  check_sizes(scores.size(), groups.size());
  std::vector<std::int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t a, std::int64_t b) { return groups[a] < groups[b]; });
  GaucResult result;
  double weighted = 0, weight = 0;
  std::vector<std::int64_t> idx;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    idx.clear();
    while (j < order.size() && groups[order[j]] == groups[order[i]]) idx.push_back(order[j++]);
    if (auto a = auc_of(scores, labels, idx)) {
      weighted += *a * static_cast<double>(idx.size());
      weight += static_cast<double>(idx.size());
      ++result.users_used;
    } else {
      ++result.users_excluded;
    }
    i = j;
  }
  if (weight > 0) result.value = weighted / weight;
  return result;
}

double logloss(const std::vector<double>& probabilities, const std::vector<std::uint8_t>& labels,
               double eps) {
  check_sizes(probabilities.size(), labels.size());
  if (probabilities.empty()) return 0.0;
  double total = 0;
  for (std::size_t i = 0; i < probabilities.size(); ++i) {
    const double p = std::clamp(probabilities[i], eps, 1.0 - eps);
    total -= labels[i] ? std::log(p) : std::log1p(-p);
  }
  return total / static_cast<double>(probabilities.size());
}

ThresholdMetrics threshold_metrics(const std::vector<double>& probabilities,
                                   const std::vector<std::uint8_t>& labels, double threshold) {
  check_sizes(probabilities.size(), labels.size());
  std::int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  for (std::size_t i = 0; i < probabilities.size(); ++i) {
    const bool predicted = probabilities[i] >= threshold;
    if (predicted && labels[i])
      ++tp;
    else if (predicted)
      ++fp;
    else if (labels[i])
      ++fn;
    else
      ++tn;
  }
  ThresholdMetrics m;
  const double n = static_cast<double>(probabilities.size());
  m.accuracy = n > 0 ? static_cast<double>(tp + tn) / n : 0.0;
  m.precision = tp + fp > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 0.0;
  m.recall = tp + fn > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fn) : 0.0;
  m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0.0;
  return m;
}

}  // namespace attnrec
