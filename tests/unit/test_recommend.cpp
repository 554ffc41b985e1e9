// attnrec recommend's pieces: the top-K of a score row against a full sort, and the users of an
// interaction log.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>

#include "attnrec/tools/recommend.hpp"
#include "support.hpp"

using namespace attnrec;
using namespace attnrec::test;

namespace {

/// The reference: every non-excluded id, fully sorted by (score desc, id asc).
Recommendation full_sort(const std::vector<double>& scores, std::int32_t first,
                         const std::vector<std::int32_t>& excluded, std::int64_t k) {
  std::vector<std::pair<double, std::int32_t>> all;
  for (std::size_t j = 0; j < scores.size(); ++j) {
    const auto id = static_cast<std::int32_t>(first + static_cast<std::int32_t>(j));
    if (std::binary_search(excluded.begin(), excluded.end(), id)) continue;
    const double key =
        std::isfinite(scores[j]) ? scores[j] : -std::numeric_limits<double>::infinity();
    all.emplace_back(-key, id);
  }
  std::sort(all.begin(), all.end());
  Recommendation r;
  for (std::size_t i = 0; i < all.size() && static_cast<std::int64_t>(i) < k; ++i) {
    r.items.push_back(all[i].second);
    r.scores.push_back(scores[static_cast<std::size_t>(all[i].second - first)]);
  }
  return r;
}

}  // namespace

TEST_CASE("recommend: top-K equals a full sort, with ties, exclusions and short lists",
          "[recommend]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const std::int64_t n = 1 + static_cast<std::int64_t>(rng() % 60);
    const std::int64_t k = 1 + static_cast<std::int64_t>(rng() % 20);
    std::vector<double> scores(static_cast<std::size_t>(n));
    // Few distinct values: many ties, which go to the smaller id.
    for (auto& s : scores) s = static_cast<double>(rng() % 5) - 2.0;
    std::vector<std::int32_t> excluded;
    for (std::int32_t id = 2; id < 2 + n + 3; ++id) {
      if (rng() % 3 == 0) excluded.push_back(id);  // some beyond the row: ignored
    }
    const auto got = top_k(scores.data(), n, 2, excluded, k);
    const auto want = full_sort(scores, 2, excluded, k);
    INFO("trial " << trial << " n " << n << " k " << k);
    REQUIRE(got.items == want.items);
    REQUIRE(got.scores == want.scores);
    // Fewer unseen items than K: all of them.
    const auto unseen = static_cast<std::int64_t>(want.items.size());
    CHECK(static_cast<std::int64_t>(got.items.size()) == std::min(k, unseen));
  }
  // A non-finite score ranks below every finite one; an exact tie goes to the smaller id.
  const std::vector<double> s = {std::nan(""), 1.0, 3.0, 3.0, -INFINITY};
  const auto r = top_k(s.data(), 5, 10, {}, 5);
  CHECK(r.items == std::vector<std::int32_t>{12, 13, 11, 10, 14});
  CHECK(top_k(s.data(), 5, 10, {12, 13}, 1).items == std::vector<std::int32_t>{11});
}

TEST_CASE("recommend: top-K of a candidate list equals a full sort", "[recommend]") {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 100; ++trial) {
    const std::int64_t n = 1 + static_cast<std::int64_t>(rng() % 40);
    const std::int64_t k = 1 + static_cast<std::int64_t>(rng() % 15);
    // Candidate ids in random order, with their scores; the reference sorts the whole row of
    // item ids [2, 2 + 60) with the other ids excluded.
    std::vector<std::int32_t> all(60);
    for (std::size_t j = 0; j < all.size(); ++j) all[j] = static_cast<std::int32_t>(2 + j);
    std::shuffle(all.begin(), all.end(), rng);
    const std::vector<std::int32_t> ids(all.begin(), all.begin() + n);
    std::vector<double> row(60, 0.0), scores;
    for (const auto id : ids) {
      scores.push_back(static_cast<double>(rng() % 4));
      row[static_cast<std::size_t>(id - 2)] = scores.back();
    }
    std::vector<std::int32_t> excluded(all.begin() + n, all.end());
    std::sort(excluded.begin(), excluded.end());
    INFO("trial " << trial);
    const auto got = top_k_of(scores.data(), ids, k);
    const auto want = full_sort(row, 2, excluded, k);
    CHECK(got.items == want.items);
    CHECK(got.scores == want.scores);
  }
}

TEST_CASE("recommend: candidate lists per user", "[recommend]") {
  TempDir dir;
  const auto items = Vocab::from_text("<pad>\t0\n<oov>\t0\na\t5\nb\t4\nc\t3\n", "items");
  write_text(dir.file("c.tsv"), "user\titem\nu2\tc\nu1\tb\nu1\tzz\nu9\ta\nu2\ta\nu2\tc\n");
  const auto lists = read_candidate_lists(dir.file("c.tsv"), {"u1", "u2", "u3"}, items);
  CHECK(lists.items[0] == std::vector<std::int32_t>{items.lookup("b")});
  CHECK(lists.items[1] == std::vector<std::int32_t>{items.lookup("a"), items.lookup("c")});
  CHECK(lists.items[2].empty());
  CHECK(lists.unknown_items == 1);
  CHECK(lists.other_users == 1);
  write_text(dir.file("bad.tsv"), "item\tuser\nb\tu1\n");
  CHECK_THROWS_WITH(read_candidate_lists(dir.file("bad.tsv"), {"u1"}, items),
                    Catch::Matchers::Contains("bad.tsv"));
  write_text(dir.file("short.tsv"), "user\titem\nu1\n");
  CHECK_THROWS_WITH(read_candidate_lists(dir.file("short.tsv"), {"u1"}, items),
                    Catch::Matchers::Contains("short.tsv:2: expected user<TAB>item"));
}

TEST_CASE("recommend: the users of an interaction log", "[recommend]") {
  TempDir dir;
  const auto log = write_text(dir.file("log.tsv"),
                              "user\titem\ttime\n"
                              "u1\ta\t30\n"
                              "u2\tb\t5\n"
                              "u1\tb\t10\n"
                              "u1\tzz\t20\n"  // unknown item: OOV in the history
                              "u1\tc\t40\n");
  const auto items = Vocab::from_text("<pad>\t0\n<oov>\t0\na\t5\nb\t4\nc\t3\n", "items");
  const auto users = Vocab::from_text("<pad>\t0\n<oov>\t0\nu1\t4\n", "users");
  const auto u = users_from_log(log, items, users, 3);
  REQUIRE(u.names == std::vector<std::string>{"u1", "u2"});
  REQUIRE(u.rows.size() == 2);
  // u1 by time: b(10) zz(20) a(30) c(40); the last 3 are its history.
  const std::vector<std::int32_t> h1(u.rows.history.begin() + u.rows.history_offsets[0],
                                     u.rows.history.begin() + u.rows.history_offsets[1]);
  CHECK(h1 == std::vector<std::int32_t>{Vocab::kOov, items.lookup("a"), items.lookup("c")});
  CHECK(u.rows.users[0] == users.lookup("u1"));
  CHECK(u.rows.users[1] == Vocab::kOov);  // a user unknown to the model still gets a list
  std::vector<std::int32_t> seen = {Vocab::kOov, items.lookup("a"), items.lookup("b"),
                                    items.lookup("c")};
  std::sort(seen.begin(), seen.end());
  CHECK(u.seen[0] == seen);
  CHECK(u.seen[1] == std::vector<std::int32_t>{items.lookup("b")});
  write_text(dir.file("bad.tsv"), "user\titem\ttime\nu1\ta\tlater\n");
  CHECK_THROWS_WITH(users_from_log(dir.file("bad.tsv"), items, users, 3),
                    Catch::Matchers::Contains("bad.tsv:2: time: expected an integer"));
}
