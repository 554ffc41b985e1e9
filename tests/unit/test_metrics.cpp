#include <catch2/catch.hpp>
#include <cmath>

#include "attnrec/eval/metrics.hpp"

using namespace attnrec;

TEST_CASE("AUC: golden values with ties", "[metrics]") {
  // Perfect and inverted rankings.
  CHECK(*auc({0.1, 0.2, 0.8, 0.9}, {0, 0, 1, 1}) == 1.0);
  CHECK(*auc({0.9, 0.8, 0.2, 0.1}, {0, 0, 1, 1}) == 0.0);
  // Hand count: positives {0.8, 0.4}, negatives {0.6, 0.4, 0.1}. Pairs: 0.8 beats all 3;
  // 0.4 beats 0.1, ties 0.4 (half), loses to 0.6 -> (3 + 1 + 0.5) / 6 = 0.75.
  CHECK(*auc({0.8, 0.4, 0.6, 0.4, 0.1}, {1, 1, 0, 0, 0}) == Approx(0.75));
  // All scores tied -> 0.5.
  CHECK(*auc({0.3, 0.3, 0.3}, {1, 0, 0}) == Approx(0.5));
  CHECK_FALSE(auc({0.1, 0.2}, {1, 1}).has_value());
}

TEST_CASE("GAUC weights users by impressions and excludes single-class users", "[metrics]") {
  // user 0: perfect (2 impressions); user 1: 0.75 case (5 impressions); user 2: positives only.
  const std::vector<double> s = {0.2, 0.9, 0.8, 0.4, 0.6, 0.4, 0.1, 0.5};
  const std::vector<std::uint8_t> y = {0, 1, 1, 1, 0, 0, 0, 1};
  const std::vector<std::int32_t> g = {0, 0, 1, 1, 1, 1, 1, 2};
  const auto r = gauc(s, y, g);
  REQUIRE(r.value.has_value());
  CHECK(*r.value == Approx((2 * 1.0 + 5 * 0.75) / 7));
  CHECK(r.users_used == 2);
  CHECK(r.users_excluded == 1);
  const auto none = gauc({0.1, 0.2}, {1, 0}, {0, 1});
  CHECK_FALSE(none.value.has_value());
  CHECK(none.users_excluded == 2);
}

TEST_CASE("logloss is clipped at extreme probabilities", "[metrics]") {
  CHECK(logloss({0.5, 0.5}, {1, 0}) == Approx(std::log(2.0)));
  CHECK(logloss({0.8, 0.1}, {1, 0}) == Approx(-(std::log(0.8) + std::log(0.9)) / 2));
  // A confident wrong prediction is finite: -log(1e-7).
  CHECK(logloss({0.0}, {1}) == Approx(-std::log(1e-7)));
  CHECK(logloss({1.0}, {0}) == Approx(-std::log(1e-7)).epsilon(1e-6));
  CHECK(std::isfinite(logloss({1.0, 0.0}, {1, 0})));
}

TEST_CASE("threshold metrics", "[metrics]") {
  // predictions >= 0.5: {1, 1, 0, 0}; labels {1, 0, 1, 0} -> tp 1, fp 1, fn 1, tn 1.
  const auto m = threshold_metrics({0.9, 0.5, 0.2, 0.1}, {1, 0, 1, 0}, 0.5);
  CHECK(m.accuracy == Approx(0.5));
  CHECK(m.precision == Approx(0.5));
  CHECK(m.recall == Approx(0.5));
  CHECK(m.f1 == Approx(0.5));
  const auto none = threshold_metrics({0.1, 0.2}, {1, 0}, 0.5);
  CHECK(none.precision == 0.0);
  CHECK(none.f1 == 0.0);
  CHECK(none.accuracy == Approx(0.5));
}
