// Negatives drawn by the trainer (data/negatives.hpp): never an interacted item, deterministic
// in (seed, epoch, sample), distributed as asked (chi-squared on a large draw), and the
// positives-only view of a training file.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "attnrec/data/negatives.hpp"
#include "attnrec/data/vocab.hpp"
#include "attnrec/util/error.hpp"

using namespace attnrec;
using Catch::Matchers::Contains;

namespace {

/// Rows (label, user, item, history) as a SampleSet; user/item ids are vocabulary ids.
struct Row {
  std::uint8_t label;
  std::int32_t user;
  std::int32_t item;
  std::vector<std::int32_t> history;
};

SampleSet make_set(const std::vector<Row>& rows, bool users = true, bool labels = true) {
  SampleSet s;
  s.source = "train.tsv";
  s.has_labels = labels;
  s.has_items = true;
  s.has_users = users;
  s.history_offsets.push_back(0);
  std::int64_t line = 2;
  for (const auto& r : rows) {
    if (labels) s.labels.push_back(r.label);
    s.items.push_back(r.item);
    if (users) {
      s.users.push_back(r.user);
      s.user_groups.push_back(r.user);
    }
    s.history.insert(s.history.end(), r.history.begin(), r.history.end());
    s.history_offsets.push_back(static_cast<std::int64_t>(s.history.size()));
    s.line_numbers.push_back(line++);
  }
  return s;
}

std::vector<std::int64_t> draw_all(const TrainingNegatives& n, const SampleSet& s,
                                   std::int64_t epoch) {
  std::vector<std::int64_t> indices(static_cast<std::size_t>(s.size()));
  for (std::int64_t i = 0; i < s.size(); ++i) indices[i] = i;
  std::vector<std::int64_t> out(indices.size() * n.per_positive());
  n.draw(epoch, indices.data(), s.size(), out.data());
  return out;
}

TrainingNegativesOptions with(std::int64_t k,
                              NegativeDistribution d = NegativeDistribution::uniform,
                              std::uint64_t seed = 7) {
  TrainingNegativesOptions o;
  o.per_positive = k;
  o.distribution = d;
  o.seed = seed;
  return o;
}

}  // namespace

TEST_CASE("negatives: never an item the user interacted with in the training file", "[negatives]") {
  // Items 2..11 (vocabulary 12). User 2 saw 2,3,4,5 (over two rows), user 3 saw 6..10.
  const auto train = make_set({{1, 2, 4, {2, 3}},
                               {1, 2, 5, {2, 3, 4}},
                               {1, 3, 10, {6, 7, 8, 9}},
                               {0, 3, 11, {6}}});  // a fixed negative: not an interaction
  // User 3's label-0 row names item 11 as a negative, which is not an interaction.
  TrainingNegatives n(train, 12, with(50));
  const auto out = draw_all(n, train, 0);
  const std::map<std::int32_t, std::set<std::int64_t>> seen = {{2, {2, 3, 4, 5}},
                                                               {3, {6, 7, 8, 9, 10}}};
  std::set<std::int64_t> drawn;
  for (std::int64_t i = 0; i < train.size(); ++i) {
    for (std::int64_t j = 0; j < 50; ++j) {
      const auto item = out[i * 50 + j];
      INFO("sample " << i << " drew " << item);
      CHECK(item >= 2);
      CHECK(item < 12);
      CHECK(seen.at(train.users[i]).count(item) == 0);
      drawn.insert(item);
    }
  }
  CHECK(drawn == std::set<std::int64_t>{2, 3, 4, 5, 6, 7, 8, 9, 10, 11});  // all reachable
  CHECK(n.excluded(0, 5));                                                 // other row, same user
  CHECK_FALSE(n.excluded(0, 6));
}

TEST_CASE("negatives: without users, the sample's own history and target", "[negatives]") {
  const auto train = make_set({{1, 0, 4, {2, 3}}, {1, 0, 2, {5}}}, /*users=*/false);
  TrainingNegatives n(train, 7, with(40));
  const auto out = draw_all(n, train, 3);
  for (std::int64_t j = 0; j < 40; ++j) {
    CHECK(std::set<std::int64_t>{5, 6}.count(out[j]) == 1);          // not 2, 3, 4
    CHECK(std::set<std::int64_t>{3, 4, 6}.count(out[40 + j]) == 1);  // not 2, 5
  }
}

TEST_CASE("negatives: held-out interactions are avoided with exclude = all", "[negatives]") {
  const auto train = make_set({{1, 2, 3, {2}}});
  const auto test = make_set({{1, 2, 4, {2, 3}}});
  TrainingNegatives plain(train, 6, with(30));
  TrainingNegatives all(train, 6, with(30), {&test});
  CHECK_FALSE(plain.excluded(0, 4));
  CHECK(all.excluded(0, 4));
  for (const auto item : draw_all(all, train, 0)) CHECK(item == 5);  // the only one left
}

TEST_CASE("negatives: a user who saw every item but one always gets that one", "[negatives]") {
  // 1000 items; the user saw all but item 500: rejection gives up, the scan finds it.
  std::vector<std::int32_t> history;
  for (std::int32_t i = 2; i < 1002; ++i) {
    if (i != 500 && i != 3) history.push_back(i);
  }
  const auto train = make_set({{1, 2, 3, history}});
  TrainingNegatives n(train, 1002, with(5));
  for (const auto item : draw_all(n, train, 0)) CHECK(item == 500);
}

TEST_CASE("negatives: a draw depends only on (seed, epoch, sample)", "[negatives]") {
  std::vector<Row> rows;
  for (std::int32_t u = 0; u < 50; ++u) rows.push_back({1, 2 + u % 7, 2 + u % 13, {2, 3}});
  const auto train = make_set(rows);
  TrainingNegatives n(train, 200, with(4));
  const auto a = draw_all(n, train, 5);
  CHECK(a == draw_all(n, train, 5));
  CHECK(a != draw_all(n, train, 6));
  TrainingNegatives other_seed(train, 200, with(4, NegativeDistribution::uniform, 8));
  CHECK(a != draw_all(other_seed, train, 5));
  // Any order, any batch: sample 17's negatives are the same when drawn alone.
  const std::int64_t index = 17;
  std::vector<std::int64_t> alone(4);
  n.draw(5, &index, 1, alone.data());
  CHECK(std::vector<std::int64_t>(a.begin() + 17 * 4, a.begin() + 18 * 4) == alone);
}

TEST_CASE("negatives: popularity sampling follows count^exponent (chi-squared)", "[negatives]") {
  // Positive counts: item 2: 1, item 3: 4, item 4: 9, item 5: 16, item 6: 0 (a negative only).
  // Drawing for a sample of item 7 (count 1, excluded as its own target) with exponent 0.5 the
  // weights are 1, 2, 3, 4 for items 2..5; item 6 is never drawn.
  std::vector<Row> rows = {{1, 0, 7, {}}};
  const std::int32_t counts[] = {1, 4, 9, 16};
  for (int i = 0; i < 4; ++i) {
    for (int c = 0; c < counts[i]; ++c) rows.push_back({1, 0, 2 + i, {}});
  }
  rows.push_back({0, 0, 6, {}});
  const auto train = make_set(rows, /*users=*/false);
  auto options = with(1000, NegativeDistribution::popularity);
  options.exponent = 0.5;
  TrainingNegatives n(train, 8, options);
  std::map<std::int64_t, double> observed;
  const std::int64_t index = 0;
  std::vector<std::int64_t> out(1000);
  const int epochs = 200;
  for (int e = 0; e < epochs; ++e) {
    n.draw(e, &index, 1, out.data());
    for (const auto item : out) observed[item] += 1;
  }
  CHECK(observed.count(6) == 0);
  CHECK(observed.count(7) == 0);
  const double total = 1000.0 * epochs;
  double chi2 = 0.0;
  for (int i = 0; i < 4; ++i) {
    const double expected = total * (i + 1) / 10.0;
    chi2 += std::pow(observed[2 + i] - expected, 2) / expected;
  }
  // 3 degrees of freedom: P(chi2 > 16.27) = 0.001.
  CHECK(chi2 < 16.27);
  // log q: the probabilities before exclusion (item 7 has weight 1 of 1+1+2+3+4 = 11).
  const auto log_q = n.log_probabilities();
  CHECK(std::exp(log_q[5]) == Approx(4.0 / 11.0));
  CHECK(std::exp(log_q[7]) == Approx(1.0 / 11.0));
  CHECK(std::isinf(log_q[6]));
  CHECK(std::isinf(log_q[Vocab::kOov]));
}

TEST_CASE("negatives: uniform sampling is uniform (chi-squared)", "[negatives]") {
  const auto train = make_set({{1, 0, 2, {}}}, /*users=*/false);
  TrainingNegatives n(train, 12, with(1000));  // items 3..11 allowed: 9 cells
  std::map<std::int64_t, double> observed;
  const std::int64_t index = 0;
  std::vector<std::int64_t> out(1000);
  for (int e = 0; e < 90; ++e) {
    n.draw(e, &index, 1, out.data());
    for (const auto item : out) observed[item] += 1;
  }
  REQUIRE(observed.size() == 9);
  double chi2 = 0.0;
  for (const auto& [item, count] : observed) chi2 += std::pow(count - 10000.0, 2) / 10000.0;
  CHECK(chi2 < 26.12);  // 8 degrees of freedom, P = 0.001
}

TEST_CASE("negatives: positives_only keeps the label-1 rows in order", "[negatives]") {
  const auto set = make_set({{1, 2, 4, {2}}, {0, 2, 9, {2}}, {1, 3, 5, {3, 4}}});
  const auto p = positives_only(set);
  REQUIRE(p.size() == 2);
  CHECK(positive_count(set) == 2);
  CHECK(p.items == std::vector<std::int32_t>{4, 5});
  CHECK(p.users == std::vector<std::int32_t>{2, 3});
  CHECK(p.history == std::vector<std::int32_t>{2, 3, 4});
  CHECK(p.history_offsets == std::vector<std::int64_t>{0, 1, 3});
  CHECK(p.line_numbers == std::vector<std::int64_t>{2, 4});
  const auto unlabelled = make_set({{1, 2, 4, {2}}}, true, /*labels=*/false);
  CHECK(positives_only(unlabelled).size() == 1);
}

TEST_CASE("negatives: a training file without items is refused", "[negatives]") {
  auto set = make_set({{1, 2, 4, {2}}});
  set.has_items = false;
  REQUIRE_THROWS_AS(TrainingNegatives(set, 10, with(1)), ConfigError);
}
