#include <catch2/catch.hpp>

#include "attnrec/data/dataset.hpp"
#include "attnrec/tools/synthetic.hpp"
#include "attnrec/util/error.hpp"
#include "support.hpp"

using namespace attnrec;
using attnrec::test::read_text;
using attnrec::test::TempDir;

namespace {
SyntheticOptions small_options() {
  SyntheticOptions o;
  o.users = 200;
  o.items = 300;
  o.categories = 10;
  o.train = 2000;
  o.valid = 500;
  o.test = 500;
  return o;
}
}  // namespace

TEST_CASE("generator: same seed gives byte-identical files, another seed differs", "[generator]") {
  TempDir a, b, c;
  auto o = small_options();
  generate_synthetic(a.path().string(), o);
  generate_synthetic(b.path().string(), o);
  o.seed = 8;
  generate_synthetic(c.path().string(), o);
  for (const char* f : {"train.tsv", "valid.tsv", "test.tsv", "oracle.json"}) {
    INFO(f);
    CHECK(read_text(a.file(f)) == read_text(b.file(f)));
    CHECK(read_text(a.file(f)) != read_text(c.file(f)));
  }
}

TEST_CASE("generator: output is readable and the oracle is well above chance", "[generator]") {
  TempDir dir;
  const auto o = small_options();
  const auto oracle = generate_synthetic(dir.path().string(), o);
  const auto train = read_training_file(dir.file("train.tsv"), ReaderOptions{}, {});
  CHECK(train.samples.size() == o.train);
  CHECK(train.samples.stats.header);
  const auto test =
      read_sample_file(dir.file("test.tsv"), ReaderOptions{}, train.items, train.users);
  REQUIRE(test.size() == o.test);
  for (const char* split : {"train", "valid", "test"}) {
    INFO(split);
    CHECK(oracle[split]["auc"].get<double>() > 0.75);
    CHECK(oracle[split]["logloss"].get<double>() < 0.6);
    const double rate = oracle[split]["positive_rate"].get<double>();
    CHECK(rate > 0.15);
    CHECK(rate < 0.75);
  }
  // The planted positions are recorded for every test sample and lie inside its history.
  const auto& planted = oracle["test_planted_positions"];
  const auto& best = oracle["test_best_positions"];
  REQUIRE(planted.size() == static_cast<std::size_t>(o.test));
  REQUIRE(best.size() == static_cast<std::size_t>(o.test));
  std::int64_t with_planted = 0;
  for (std::int64_t i = 0; i < o.test; ++i) {
    const auto len = test.history_length(i);
    for (const auto& p : planted[i]) {
      CHECK(p.get<std::int64_t>() >= 0);
      CHECK(p.get<std::int64_t>() < len);
    }
    CHECK(best[i].get<std::int64_t>() < len);
    CHECK(best[i].get<std::int64_t>() >= (len > 0 ? 0 : -1));
    with_planted += !planted[i].empty();
  }
  // Candidates come from the user's interests half of the time, so many samples have some.
  CHECK(with_planted > o.test / 3);
}

TEST_CASE("generator: impossible options are usage errors", "[generator]") {
  TempDir dir;
  auto o = small_options();
  o.items = 5;
  CHECK_THROWS_AS(generate_synthetic(dir.path().string(), o), UsageError);
  o = small_options();
  o.max_history = 1;
  CHECK_THROWS_WITH(generate_synthetic(dir.path().string(), o),
                    "generate: --max-history must be >= --min-history");
}
