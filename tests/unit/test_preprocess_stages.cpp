// The preprocess stages on their own (hand-made events with worked-out results), the shared
// TSV reader, and RFC 4180 CSV fields.
#include <catch2/catch.hpp>

#include "attnrec/data/preprocess.hpp"
#include "attnrec/data/preprocess_stages.hpp"
#include "attnrec/data/tsv.hpp"
#include "attnrec/util/error.hpp"
#include "support.hpp"

using namespace attnrec;
using namespace attnrec::test;
using Catch::Matchers::Contains;

namespace {

Event ev(std::int32_t user, std::int32_t item, std::int64_t time, std::int64_t order) {
  return Event{user, item, time, order, -1, 0};
}

std::vector<std::int32_t> items_of(const std::vector<Event>& events) {
  std::vector<std::int32_t> out;
  for (const auto& e : events) out.push_back(e.item);
  return out;
}

}  // namespace

TEST_CASE("stage: deduplicate keeps the first, the last or every repeat", "[preprocess][stage]") {
  // user 0 saw item 5 at t=30 and t=10 (file order 0, 1), item 6 once.
  const std::vector<Event> log = {ev(0, 5, 30, 0), ev(0, 5, 10, 1), ev(0, 6, 20, 2)};
  auto events = log;
  CHECK(deduplicate(events, DedupPolicy::first) == 1);
  REQUIRE(events.size() == 2);
  CHECK(events[0].time == 10);  // the earliest by time, not by file order
  events = log;
  CHECK(deduplicate(events, DedupPolicy::last) == 1);
  CHECK(events[0].time == 30);
  events = log;
  CHECK(deduplicate(events, DedupPolicy::none) == 0);
  CHECK(events.size() == 3);
}

TEST_CASE("stage: k-core repeats until every user and item has enough", "[preprocess][stage]") {
  // min 2 per user and per item.
  std::vector<Event> events = {ev(0, 7, 1, 0), ev(0, 8, 2, 1), ev(1, 7, 1, 2), ev(1, 8, 2, 3),
                               ev(2, 8, 1, 4), ev(2, 9, 2, 5), ev(3, 7, 1, 6), ev(3, 6, 2, 7)};
  const auto r = kcore_filter(events, 4, 10, 2, 2);
  // Round 1: item 9 and item 6 (one each) go; users 2 and 3 fall to one event. Round 2: they
  // go; item 8 keeps users 0 and 1 (2), item 7 keeps 0 and 1 (2). Stable.
  CHECK(r.rounds == 2);
  CHECK(r.dropped == 4);
  CHECK(events.size() == 4);
  CHECK(r.item_count[7] == 2);
  CHECK(r.item_count[9] == 0);
  std::vector<Event> none = {ev(0, 1, 1, 0)};
  kcore_filter(none, 1, 2, 2, 1);
  CHECK(none.empty());
}

TEST_CASE("stage: timelines, leave-last-out, temporal, short histories", "[preprocess][stage]") {
  // user 1 (four events, two at t=20 in file order 3 then 1) and user 0 (two events).
  std::vector<Event> events = {ev(1, 10, 20, 3), ev(0, 1, 5, 0),   ev(1, 11, 20, 1),
                               ev(1, 12, 30, 2), ev(1, 13, 10, 4), ev(0, 2, 6, 5)};
  const auto timelines = sort_timelines(events);
  REQUIRE(timelines.size() == 2);
  CHECK(timelines[0] == std::make_pair<std::size_t, std::size_t>(0, 2));
  CHECK(items_of(events) == std::vector<std::int32_t>{1, 2, 13, 11, 10, 12});  // ties: order
  auto split = split_leave_last_out(events, timelines);
  CHECK(split["users_with_fewer_than_3_events_train_only"] == 1);
  std::vector<int> splits;
  for (const auto& e : events) splits.push_back(e.split);
  CHECK(splits == std::vector<int>{0, 0, 0, 0, 1, 2});
  CHECK(drop_short_histories(events, timelines, 1) == 2);  // each user's first event
  CHECK(events[0].split == -1);
  CHECK(events[2].split == -1);
  // Temporal: times 5, 6, 10, 20, 20, 30; test from the 0.8 quantile (k = 4: t=20 -> 20 and 30),
  // valid from the 0.6 quantile (k = 3: t=20): none left for valid.
  auto temporal = split_temporal(events, 0.2, 0.2);
  CHECK(temporal["test_from_time"] == 20);
  CHECK(temporal["valid_from_time"] == 20);
  splits.clear();
  for (const auto& e : events) splits.push_back(e.split);
  CHECK(splits == std::vector<int>{0, 0, 0, 2, 2, 2});
}

TEST_CASE("stage: negatives are never interacted, distinct, seeded", "[preprocess][stage]") {
  const std::vector<std::int32_t> kept = {2, 3, 4, 5, 6, 7};
  std::vector<std::int64_t> train_count = {0, 0, 9, 0, 1, 1, 0, 0};
  NegativeSampler a(kept, train_count, 7), b(kept, train_count, 7);
  const std::vector<std::int32_t> interacted = {2, 3};
  a.set_user(interacted);
  b.set_user(interacted);
  std::vector<std::int32_t> x, y;
  a.sample(4, false, "u", x);
  b.sample(4, false, "u", y);
  CHECK(x == y);
  std::sort(x.begin(), x.end());
  CHECK(x == std::vector<std::int32_t>{4, 5, 6, 7});  // all four untouched items
  // Popularity: only trained items (2, 4, 5) are drawn; 2 is interacted, so 4 and 5.
  a.sample(2, true, "u", x);
  std::sort(x.begin(), x.end());
  CHECK(x == std::vector<std::int32_t>{4, 5});
  CHECK_THROWS_WITH(a.sample(3, true, "u7", x),
                    Contains("user \"u7\" interacted with all but 2 of the 3 items"));
  CHECK_THROWS_WITH(a.sample(5, false, "u7", x), Contains("fewer than the 5 negatives"));
  CHECK(NegativeSampler(kept, std::vector<std::int64_t>(8, 0), 1).has_popularity() == false);
}

TEST_CASE("TsvReader: CRLF, fields, line numbers, headers, errors", "[preprocess][tsv]") {
  TempDir dir;
  const auto path = write_text(dir.file("t.tsv"), "user\titem\ttime\r\nu1\ti1\t5\r\nu2\ti2\n");
  TsvReader r(path, "interaction log");
  r.expect_header({"user", "item"}, /*exact=*/false);
  REQUIRE(r.next());
  CHECK(r.line_number() == 2);
  CHECK(r.fields() == std::vector<std::string_view>{"u1", "i1", "5"});
  REQUIRE(r.next());
  CHECK(r.fields().size() == 2);
  CHECK_THROWS_WITH(r.fail("bad"), path + ":3: bad");
  CHECK_FALSE(r.next());
  TsvReader exact(path, "x");
  CHECK_THROWS_WITH(exact.expect_header({"user", "item"}, true),
                    path + ":1: expected the header \"user<TAB>item\"");
  TsvReader empty(write_text(dir.file("e.tsv"), ""), "x");
  CHECK_THROWS_WITH(empty.expect_header({"item"}, true), Contains("e.tsv: file is empty"));
  CHECK_THROWS_WITH(TsvReader(dir.file("missing.tsv"), "item categories file"),
                    Contains("missing.tsv: cannot open item categories file"));
}

TEST_CASE("CSV fields: RFC 4180 quoting", "[preprocess][csv]") {
  std::vector<std::string> f;
  CHECK(split_csv("a,b,,c", ',', f).empty());
  CHECK(f == std::vector<std::string>{"a", "b", "", "c"});
  CHECK(split_csv(R"("Smith, J.",42,"say ""hi""",)", ',', f).empty());
  CHECK(f == std::vector<std::string>{"Smith, J.", "42", "say \"hi\"", ""});
  CHECK(split_csv(R"("",x)", ',', f).empty());
  CHECK(f == std::vector<std::string>{"", "x"});
  CHECK(split_csv("a\t\"b\tc\"", '\t', f).empty());
  CHECK(f == std::vector<std::string>{"a", "b\tc"});
  CHECK_THAT(split_csv(R"(a,"open)", ',', f), Contains("unterminated quoted field"));
  CHECK_THAT(split_csv(R"("a"b,c)", ',', f), Contains("unexpected text after the closing quote"));
  CHECK_THAT(split_csv(R"(a"b,c)", ',', f), Contains("a quote inside an unquoted field"));
}

TEST_CASE("preprocess: a quoted csv field holding the delimiter keeps the columns in place",
          "[preprocess][csv]") {
  TempDir dir;
  PreprocessOptions o;
  o.out_dir = dir.file("out");
  o.ranking_negatives = 0;
  o.min_history = 0;
  o.format = LogFormat::csv;
  o.columns = {"user=user", "item=item", "time=ts"};
  // The title column holds commas and quotes; before RFC 4180 parsing "ts" read "Jr." as time.
  o.input = write_text(dir.file("q.csv"),
                       "user,title,item,ts\n"
                       "1,\"Smith, Jr.\",10,100\n1,\"a \"\"b\"\", c\",11,200\n1,plain,12,300\n"
                       "2,\"x,y,z\",11,100\n2,t,13,200\n2,t,12,300\n");
  const auto stats = preprocess(o);
  CHECK(stats["kept"]["interactions"] == 6);
  CHECK(
      read_text(dir.file("out/interactions.tsv")) ==
      "user\titem\ttime\n1\t10\t100\n1\t11\t200\n1\t12\t300\n2\t11\t100\n2\t13\t200\n2\t12\t300\n");
  o.input = write_text(dir.file("bad.csv"), "user,title,item,ts\n1,\"open,10,100\n");
  CHECK_THROWS_WITH(preprocess(o), Contains("bad.csv:2: unterminated quoted field"));
}
