#pragma once
/// \file Ranking metrics of one positive against a candidate set: HR@K, NDCG@K and MRR.
///
/// Ties are broken pessimistically: a negative scoring exactly as high as the positive ranks
/// above it, so rank = 1 + #{negatives with score >= positive}. A model that scores everything
/// equally therefore gets rank N+1 (the worst), not an average rank, and cannot win by producing
/// constant scores.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace attnrec {

/// 1 + the number of `negatives` scoring >= `positive`. A NaN positive ranks last.
std::int64_t pessimistic_rank(double positive, const double* negatives, std::size_t count);

/// Averages HR@K, NDCG@K (one relevant item: 1/log2(rank+1) when rank <= K) and MRR (1/rank,
/// not truncated) over ranked rows.
class RankingAccumulator {
 public:
  explicit RankingAccumulator(std::vector<std::int64_t> ks);
  void add_rank(std::int64_t rank);
  void add(double positive, const double* negatives, std::size_t count) {
    add_rank(pessimistic_rank(positive, negatives, count));
  }
  std::int64_t rows() const { return rows_; }
  /// {"rows", "hr@K"..., "ndcg@K"..., "mrr", "mean_rank"}; metrics are null with no rows.
  nlohmann::json result() const;

 private:
  std::vector<std::int64_t> ks_;
  std::vector<double> hits_, ndcg_;
  double reciprocal_ = 0, rank_sum_ = 0;
  std::int64_t rows_ = 0;
};

}  // namespace attnrec
