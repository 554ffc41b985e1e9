// Ranking metrics: golden values worked out by hand.
#include <catch2/catch.hpp>

#include <cmath>

#include "attnrec/eval/ranking.hpp"
#include "attnrec/util/error.hpp"

using namespace attnrec;

TEST_CASE("ranking: pessimistic rank counts ties against the positive", "[ranking]") {
  const double negatives[] = {0.1, 0.5, 0.9, 0.5};
  CHECK(pessimistic_rank(0.95, negatives, 4) == 1);
  CHECK(pessimistic_rank(0.6, negatives, 4) == 2);
  CHECK(pessimistic_rank(0.5, negatives, 4) == 4);  // both 0.5 ties rank above
  CHECK(pessimistic_rank(0.0, negatives, 4) == 5);
  CHECK(pessimistic_rank(std::nan(""), negatives, 4) == 5);
  // A constant scorer gets the worst rank, not the average.
  const double flat[] = {0.3, 0.3, 0.3};
  CHECK(pessimistic_rank(0.3, flat, 3) == 4);
}

TEST_CASE("ranking: HR, NDCG and MRR golden values", "[ranking]") {
  RankingAccumulator acc({1, 3, 10});
  for (const std::int64_t rank : {1, 2, 4, 11}) acc.add_rank(rank);
  const auto r = acc.result();
  CHECK(r["rows"] == 4);
  // HR@K: ranks <= K.
  CHECK(r["hr@1"].get<double>() == Approx(1.0 / 4));
  CHECK(r["hr@3"].get<double>() == Approx(2.0 / 4));
  CHECK(r["hr@10"].get<double>() == Approx(3.0 / 4));
  // NDCG@K: 1/log2(rank+1) for ranks <= K: rank 1 -> 1, rank 2 -> 1/log2(3) = 0.63093,
  // rank 4 -> 1/log2(5) = 0.43068.
  CHECK(r["ndcg@1"].get<double>() == Approx(0.25));
  CHECK(r["ndcg@3"].get<double>() == Approx((1 + 0.6309297536) / 4));
  CHECK(r["ndcg@10"].get<double>() == Approx((1 + 0.6309297536 + 0.4306765581) / 4));
  // MRR: (1 + 1/2 + 1/4 + 1/11) / 4 = 0.46022727.
  CHECK(r["mrr"].get<double>() == Approx(0.4602272727));
  CHECK(r["mean_rank"].get<double>() == Approx(4.5));
}

TEST_CASE("ranking: scores feed ranks, and no rows give null metrics", "[ranking]") {
  RankingAccumulator acc({2});
  const double a[] = {0.2, 0.8};  // positive 0.5 -> rank 2
  const double b[] = {0.1, 0.2};  // positive 0.5 -> rank 1
  acc.add(0.5, a, 2);
  acc.add(0.5, b, 2);
  CHECK(acc.result()["hr@2"].get<double>() == Approx(1.0));
  CHECK(acc.result()["mrr"].get<double>() == Approx(0.75));
  RankingAccumulator none({5});
  CHECK(none.result()["hr@5"].is_null());
  CHECK_THROWS_AS(RankingAccumulator({0}), UsageError);
}
