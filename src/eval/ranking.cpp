#include "attnrec/eval/ranking.hpp"

#include <cmath>

#include "attnrec/util/error.hpp"

namespace attnrec {

std::int64_t pessimistic_rank(double positive, const double* negatives, std::size_t count) {
  if (std::isnan(positive)) return static_cast<std::int64_t>(count) + 1;
  std::int64_t above = 0;
  // A NaN negative compares false and so ranks below; that only flatters a broken model when
  // the positive is finite, which is why non-finite scores are also reported by the caller.
  for (std::size_t i = 0; i < count; ++i) above += negatives[i] >= positive;
  return above + 1;
}

RankingAccumulator::RankingAccumulator(std::vector<std::int64_t> ks) : ks_(std::move(ks)) {
  for (const auto k : ks_) {
    if (k < 1) throw UsageError("ranking cut-off K must be >= 1, got " + std::to_string(k));
  }
  hits_.assign(ks_.size(), 0.0);
  ndcg_.assign(ks_.size(), 0.0);
}

void RankingAccumulator::add_rank(std::int64_t rank) {
  ++rows_;
  for (std::size_t j = 0; j < ks_.size(); ++j) {
    if (rank <= ks_[j]) {
      hits_[j] += 1.0;
      ndcg_[j] += 1.0 / std::log2(static_cast<double>(rank) + 1.0);
    }
  }
  reciprocal_ += 1.0 / static_cast<double>(rank);
  rank_sum_ += static_cast<double>(rank);
}

nlohmann::json RankingAccumulator::result() const {
  nlohmann::json r;
  r["rows"] = rows_;
  const double n = static_cast<double>(rows_);
  auto value = [&](double sum) { return rows_ == 0 ? nlohmann::json() : nlohmann::json(sum / n); };
  for (std::size_t j = 0; j < ks_.size(); ++j) {
    r["hr@" + std::to_string(ks_[j])] = value(hits_[j]);
    r["ndcg@" + std::to_string(ks_[j])] = value(ndcg_[j]);
  }
  r["mrr"] = value(reciprocal_);
  r["mean_rank"] = value(rank_sum_);
  return r;
}

}  // namespace attnrec
