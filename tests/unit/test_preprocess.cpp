// Preprocessing of interaction logs and the leakage checker, on small hand-made logs whose
// expected outputs are worked out in the comments.
#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <map>
#include <set>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/leakage.hpp"
#include "attnrec/data/preprocess.hpp"
#include "attnrec/tools/synthetic.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/hash.hpp"
#include "attnrec/util/strings.hpp"
#include "support.hpp"

using namespace attnrec;
using namespace attnrec::test;
using Catch::Matchers::Contains;

namespace {

// user::item::rating::time. With --min-rating 4 the rating-2 line goes; (2,10) appears twice
// (t=150 and t=450); user 3 has one event and item 99 one interaction.
const char* kMovieLens =
    "1::10::5::100\n"
    "1::11::4::200\n"
    "1::12::2::300\n"
    "1::13::5::300\n"
    "1::14::4::400\n"
    "2::10::4::150\n"
    "2::11::5::250\n"
    "2::15::5::350\n"
    "2::10::5::450\n"
    "3::99::5::100\n";

PreprocessOptions base_options(const TempDir& dir, const std::string& input) {
  PreprocessOptions o;
  o.input = input;
  o.out_dir = dir.file("out");
  o.min_rating = 4.0;
  o.min_user_interactions = 2;
  o.ranking_negatives = 0;
  return o;
}

/// Data lines (header dropped) of a file.
std::vector<std::string> data_lines(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(read_text(path));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string_view> f;
  split(line, '\t', f);
  return std::vector<std::string>(f.begin(), f.end());
}

}  // namespace

TEST_CASE("preprocess: movielens, rating filter, dedup first, k-core, leave-last-out",
          "[preprocess]") {
  TempDir dir;
  const auto input = write_text(dir.file("ratings.dat"), kMovieLens);
  const auto stats = preprocess(base_options(dir, input));
  CHECK(stats["input"]["format"] == "movielens");
  CHECK(stats["dropped"]["below_min_rating"] == 1);
  CHECK(stats["dropped"]["duplicates"] == 1);
  CHECK(stats["dropped"]["kcore_interactions"] == 1);  // user 3
  CHECK(stats["kept"]["users"] == 2);
  CHECK(stats["kept"]["items"] == 5);  // 10, 11, 13, 14, 15
  CHECK(stats["kept"]["interactions"] == 7);
  CHECK(stats["input"]["sha256"] == sha256_hex(kMovieLens));

  // User 1: 10@100 11@200 13@300 14@400 -> test 14, valid 13, train 11 (10 has no history).
  // User 2: 10@150 11@250 15@350 -> test 15, valid 11, no train sample (10 has no history).
  // User 1 interacted with everything but 15, so every negative of user 1 is 15.
  const auto train = data_lines(dir.file("out/train.tsv"));
  REQUIRE(train.size() == 2);
  CHECK(train[0] == "1\t1\t11\t10\t200");
  CHECK(train[1] == "0\t1\t15\t10\t200");
  // The training positives alone, for negatives drawn by the trainer.
  CHECK(read_text(dir.file("out/train_positives.tsv")) ==
        "label\tuser\titem\thistory\ttime\n1\t1\t11\t10\t200\n");
  const auto valid = data_lines(dir.file("out/valid.tsv"));
  REQUIRE(valid.size() == 4);
  CHECK(valid[0] == "1\t1\t13\t10,11\t300");
  CHECK(valid[1] == "0\t1\t15\t10,11\t300");
  CHECK(valid[2] == "1\t2\t11\t10\t250");
  const auto test = data_lines(dir.file("out/test.tsv"));
  REQUIRE(test.size() == 4);
  CHECK(test[0] == "1\t1\t14\t10,11,13\t400");
  CHECK(test[2] == "1\t2\t15\t10,11\t350");
  // User 2 never touched 13 or 14: those are the only possible negatives.
  for (const auto& line : {valid[3], test[3]}) {
    const auto f = fields_of(line);
    CHECK(f[0] == "0");
    CHECK((f[2] == "13" || f[2] == "14"));
  }
  CHECK(stats["splits"]["test"]["positives"] == 2);
  CHECK(stats["splits"]["test"]["positive_rate"] == Approx(0.5));
  CHECK(stats["splits"]["test"]["mean_history_length"] == Approx(2.5));
  CHECK(stats["dropped"]["targets_with_short_history"] == 2);
  CHECK(read_text(dir.file("out/interactions.tsv")) ==
        "user\titem\ttime\n1\t10\t100\n1\t11\t200\n1\t13\t300\n1\t14\t400\n"
        "2\t10\t150\n2\t11\t250\n2\t15\t350\n");
  const auto protocol = nlohmann::json::parse(read_text(dir.file("out/protocol.json")));
  CHECK(protocol["split"]["protocol"] == "leave_last_out");
  CHECK(protocol["options"]["seed"] == 42);
  CHECK(protocol["options"]["min_rating"] == 4.0);
  CHECK(protocol["input"]["sha256"] == sha256_hex(kMovieLens));
  CHECK(protocol["outputs_sha256"]["train.tsv"] ==
        sha256_hex(read_text(dir.file("out/train.tsv"))));
  CHECK(protocol["outputs_sha256"]["train_positives.tsv"] ==
        sha256_hex(read_text(dir.file("out/train_positives.tsv"))));
  CHECK(nlohmann::json::parse(read_text(dir.file("out/leakage_report.json")))["ok"] == true);
}

TEST_CASE("preprocess: dedup last and none", "[preprocess]") {
  TempDir dir;
  const auto input = write_text(dir.file("ratings.dat"), kMovieLens);
  auto o = base_options(dir, input);
  o.dedup = DedupPolicy::last;
  preprocess(o);
  // (2,10) keeps t=450: user 2 is 11@250 15@350 10@450 -> test target 10.
  auto test = data_lines(dir.file("out/test.tsv"));
  CHECK(test[2] == "1\t2\t10\t11,15\t450");
  o.dedup = DedupPolicy::none;
  o.negatives = 1;
  const auto stats = preprocess(o);
  CHECK(stats["dropped"]["duplicates"] == 0);
  CHECK(stats["kept"]["interactions"] == 8);
  test = data_lines(dir.file("out/test.tsv"));
  CHECK(test[2] == "1\t2\t10\t10,11,15\t450");  // the repeat keeps its earlier occurrence
  // Repeat consumption is not leakage: the earlier 10 is in the past.
  CheckDataOptions c;
  c.dir = o.out_dir;
  const auto report = check_data(c);
  CHECK(report["ok"] == true);
  CHECK(report["checked"]["repeat_targets_in_history"] == 1);
}

TEST_CASE("preprocess: temporal split by global time quantiles", "[preprocess]") {
  TempDir dir;
  const auto input = write_text(dir.file("ratings.dat"), kMovieLens);
  auto o = base_options(dir, input);
  o.split = SplitProtocol::temporal;
  o.test_fraction = 0.3;
  o.valid_fraction = 0.2;
  const auto stats = preprocess(o);
  // Kept times 100 150 200 250 300 350 400: test from the 70% quantile (index 4: 300),
  // valid from the 50% quantile (index 3: 250).
  const auto protocol = nlohmann::json::parse(read_text(dir.file("out/protocol.json")));
  CHECK(protocol["split"]["test_from_time"] == 300);
  CHECK(protocol["split"]["valid_from_time"] == 250);
  std::vector<std::string> positives;
  for (const auto& l : data_lines(dir.file("out/test.tsv"))) {
    if (l[0] == '1') positives.push_back(l);
  }
  CHECK(positives == std::vector<std::string>{"1\t1\t13\t10,11\t300", "1\t1\t14\t10,11,13\t400",
                                              "1\t2\t15\t10,11\t350"});
  CHECK(data_lines(dir.file("out/valid.tsv"))[0] == "1\t2\t11\t10\t250");
  CHECK(data_lines(dir.file("out/train.tsv"))[0] == "1\t1\t11\t10\t200");
  CHECK(stats["splits"]["valid"]["positives"] == 1);
}

TEST_CASE("preprocess: k-core repeats until stable (sequence format)", "[preprocess]") {
  TempDir dir;
  // Items: x 3, y 2, z 1, w 1 -> z, w go; then b has 1 interaction -> b goes; x still has 2.
  const auto input = write_text(dir.file("seq.txt"), "a x y\nb x z\nc y x\nd w\n");
  PreprocessOptions o;
  o.input = input;
  o.out_dir = dir.file("out");
  o.min_user_interactions = 2;
  o.min_item_interactions = 2;
  o.ranking_negatives = 0;
  o.min_history = 0;
  // Only x and y survive and each user touched both: no item is left to be a negative.
  CHECK_THROWS_WITH(preprocess(o), Contains("interacted with all but 0"));
  CHECK(detect_format(input) == LogFormat::sequence);
  // Two more users with three items of their own: negatives exist, and valid/test targets.
  write_text(input, "a x y\nb x z\nc y x\nd w\ne e1 e2 e3\nf e1 e2 e3\n");
  o.min_history = 1;
  const auto stats = preprocess(o);
  CHECK(stats["kept"]["users"] == 4);  // a, c, e, f
  CHECK(stats["kept"]["items"] == 5);  // x, y, e1, e2, e3
  CHECK(stats["dropped"]["kcore_rounds"] == 2);
  // Sequence positions are the times: a = x@0 y@1.
  CHECK(read_text(dir.file("out/interactions.tsv")).find("a\tx\t0\na\ty\t1\n") !=
        std::string::npos);
}

TEST_CASE("preprocess: every input format and its malformed lines", "[preprocess]") {
  TempDir dir;
  PreprocessOptions o;
  o.out_dir = dir.file("out");
  o.ranking_negatives = 0;
  o.min_history = 0;  // so that users with 3 events still give a training sample
  auto run = [&](const std::string& name, const std::string& text, const std::string& format) {
    o.input = write_text(dir.file(name), text);
    o.format = *parse_choice<LogFormat>(format);
    return preprocess(o);
  };
  // Three users with three events over four items: one train, valid, test target each.
  SECTION("movielens_tsv (u.data)") {
    const std::string ok =
        "1\t1\t5\t10\n1\t2\t5\t20\n1\t3\t5\t30\n2\t2\t4\t10\n2\t3\t4\t20\n"
        "2\t4\t4\t30\n";
    CHECK(detect_format(write_text(dir.file("u.data"), ok)) == LogFormat::movielens_tsv);
    CHECK(run("u.data", ok, "auto")["kept"]["interactions"] == 6);
    CHECK_THROWS_WITH(run("u.data", ok + "3\t1\tfive\t40\n", "movielens_tsv"),
                      Contains("u.data:7: rating must be a number, got \"five\""));
  }
  SECTION("amazon JSON lines") {
    const std::string ok =
        R"({"reviewerID": "A1", "asin": "B1", "unixReviewTime": 10, "overall": 5.0})"
        "\n"
        R"({"reviewerID": "A1", "asin": "B2", "unixReviewTime": 20})"
        "\n"
        R"({"reviewerID": "A1", "asin": "B3", "unixReviewTime": 30})"
        "\n"
        R"({"reviewerID": "A2", "asin": "B4", "unixReviewTime": 5})"
        "\n";
    CHECK(run("a.json", ok, "auto")["input"]["format"] == "amazon");
    CHECK_THROWS_WITH(run("a.json", ok + "{\"reviewerID\": \"A3\", \"asin\": \"B1\"}\n", "amazon"),
                      Contains("a.json:5: missing integer field \"unixReviewTime\""));
    CHECK_THROWS_WITH(run("a.json", ok + "{not json\n", "amazon"),
                      Contains("a.json:5: invalid JSON"));
  }
  SECTION("taobao with categories and a behaviour filter") {
    const std::string ok =
        "1,10,c1,pv,100\n1,11,c1,pv,200\n1,12,c2,buy,300\n1,13,c2,pv,400\n"
        "2,10,c1,pv,100\n2,14,c3,pv,200\n2,15,c3,cart,250\n2,13,c2,pv,300\n";
    o.behaviors = {"pv", "buy"};
    const auto stats = run("t.csv", ok, "auto");
    CHECK(stats["input"]["format"] == "taobao");
    CHECK(stats["dropped"]["other_behaviors"] == 1);
    CHECK(stats["kept"]["categories"] == 3);
    CHECK(read_text(dir.file("out/item_categories.tsv")) ==
          "item\tcategory\n10\tc1\n11\tc1\n12\tc2\n13\tc2\n14\tc3\n");
    CHECK_THROWS_WITH(run("t.csv", ok + "3,1,c1,pv\n", "taobao"),
                      Contains("t.csv:9: expected 5 comma-separated fields"));
    o.behaviors.clear();
  }
  SECTION("generic csv by header names and by index") {
    const std::string ok =
        "userId,movieId,rating,timestamp\n1,10,4.5,100\n1,11,4,200\n"
        "1,12,5,300\n2,11,3,100\n2,13,4,150\n2,12,5,200\n";
    o.columns = {"user=userId", "item=movieId", "rating=rating", "time=timestamp"};
    o.min_rating = 4.0;
    auto stats = run("r.csv", ok, "csv");
    CHECK(stats["dropped"]["header_lines"] == 1);
    CHECK(stats["dropped"]["below_min_rating"] == 1);
    o.columns = {"user=userId", "item=movie"};
    o.min_rating.reset();
    CHECK_THROWS_WITH(run("r.csv", ok, "csv"), Contains("did you mean \"movieId\""));
    o.columns = {"user=0", "item=1", "time=3"};
    o.header = true;
    stats = run("r.csv", ok, "csv");
    CHECK(stats["kept"]["interactions"] == 6);
    o.header = false;
    CHECK_THROWS_WITH(run("r.csv", ok, "csv"),
                      Contains("r.csv:1: timestamp must be an integer, got \"timestamp\""));
    o.columns.clear();
  }
  SECTION("undetectable and unusable input") {
    CHECK_THROWS_WITH(run("x.csv", "userId,movieId,rating\n1,2,3\n", "auto"),
                      Contains("x.csv:1: cannot detect the log format"));
    CHECK_THROWS_WITH(run("empty.dat", "\n\n", "auto"), Contains("the interaction log is empty"));
    CHECK_THROWS_WITH(
        run("bad.dat", "1::2::3\n", "movielens"),
        Contains("bad.dat:1: expected 4 fields user::item::rating::timestamp, got 3"));
    CHECK_THROWS_WITH(run("sp.dat", "1::a b::5::1\n", "movielens"),
                      Contains("sp.dat:1: id \"a b\" contains"));
    o.min_rating = 4.0;
    CHECK_THROWS_WITH(run("s.txt", "a x y\n", "sequence"),
                      Contains("--min-rating needs ratings, but format sequence has none"));
    o.min_rating.reset();
  }
}

TEST_CASE("preprocess: option validation names the option", "[preprocess]") {
  PreprocessOptions o;
  o.input = "in";
  o.out_dir = "out";
  // A value outside the choices cannot reach the struct: the option table refuses it.
  Config c = default_config();
  CHECK_THROWS_WITH(apply_overrides(c, {"preprocess.split=random"}),
                    Contains("/preprocess/split: unknown value \"random\"") &&
                        Contains("allowed: leave_last_out, temporal"));
  CHECK_THROWS_WITH(apply_overrides(c, {"preprocess.negatives=0"}),
                    Contains("/preprocess/negatives: out of range"));
  o.split = SplitProtocol::temporal;
  o.valid_fraction = 0.5;
  o.test_fraction = 0.5;
  CHECK_THROWS_AS(o.validate(), UsageError);
  o.valid_fraction = o.test_fraction = 0.1;
  o.format = LogFormat::csv;
  CHECK_THROWS_WITH(o.validate(), Contains("--format csv needs --columns"));
}

TEST_CASE("preprocess: negatives and candidates never interacted, deterministic by seed",
          "[preprocess]") {
  TempDir dir;
  LogOptions lo;
  lo.users = 150;
  lo.items = 200;
  lo.categories = 8;
  lo.min_events = 5;
  lo.max_events = 40;
  const auto input = dir.file("log.dat");
  generate_interaction_log(input, lo);
  PreprocessOptions o;
  o.input = input;
  o.min_rating = 4.0;
  o.min_user_interactions = 3;
  o.negatives = 4;
  o.ranking_negatives = 20;
  o.sampling = PreprocessSampling::popularity;
  o.out_dir = dir.file("a");
  preprocess(o);
  o.out_dir = dir.file("b");
  preprocess(o);
  o.out_dir = dir.file("c");
  o.seed = 43;
  preprocess(o);
  for (const char* f :
       {"train.tsv", "valid.tsv", "test.tsv", "test_candidates.tsv", "valid_candidates.tsv"}) {
    CHECK(read_text(dir.file(std::string("a/") + f)) == read_text(dir.file(std::string("b/") + f)));
    CHECK(read_text(dir.file(std::string("a/") + f)) != read_text(dir.file(std::string("c/") + f)));
  }
  // Independent check: no negative and no ranking candidate is an item of the user's log.
  std::map<std::string, std::set<std::string>> seen;
  for (const auto& l : data_lines(dir.file("a/interactions.tsv"))) {
    const auto f = fields_of(l);
    seen[f[0]].insert(f[1]);
  }
  std::int64_t negatives = 0;
  for (const char* split : {"train.tsv", "valid.tsv", "test.tsv"}) {
    for (const auto& l : data_lines(dir.file(std::string("a/") + split))) {
      const auto f = fields_of(l);
      if (f[0] == "0") {
        ++negatives;
        CHECK(seen[f[1]].count(f[2]) == 0);
      }
    }
  }
  CHECK(negatives > 1000);
  // Each candidates file holds one row per positive of its split, with that positive's history.
  for (const char* split_name : {"test", "valid"}) {
    std::set<std::string> positives;
    for (const auto& l : data_lines(dir.file(std::string("a/") + split_name + ".tsv"))) {
      const auto f = fields_of(l);
      if (f[0] == "1") positives.insert(f[1] + "\t" + f[2] + "\t" + f[3] + "\t" + f[4]);
    }
    const auto rows = data_lines(dir.file(std::string("a/") + split_name + "_candidates.tsv"));
    CHECK(rows.size() == positives.size());
    for (const auto& l : rows) {
      const auto f = fields_of(l);
      CHECK(positives.count(f[0] + "\t" + f[1] + "\t" + f[2] + "\t" + f[3]) == 1);
      std::vector<std::string_view> c;
      split(f[4], ',', c);
      REQUIRE(c.size() == 20);
      std::set<std::string> distinct(c.begin(), c.end());
      CHECK(distinct.size() == 20);
      for (const auto& item : distinct) CHECK(seen[f[0]].count(item) == 0);
    }
  }
  // The validation candidates are drawn from a stream of their own: not a copy of the test ones.
  CHECK(data_lines(dir.file("a/valid_candidates.tsv")) !=
        data_lines(dir.file("a/test_candidates.tsv")));
  const auto report = nlohmann::json::parse(read_text(dir.file("a/leakage_report.json")));
  CHECK(report["checked"]["valid_candidate_rows"].get<std::int64_t>() ==
        static_cast<std::int64_t>(data_lines(dir.file("a/valid_candidates.tsv")).size()));
}

TEST_CASE("preprocess: lines spanning the read buffer are read whole", "[preprocess]") {
  TempDir dir;
  // About 2.6 MB: the 1 MiB read buffer ends inside lines several times.
  std::string text;
  std::int64_t lines = 0;
  for (int u = 0; u < 2000 && text.size() < 2'600'000; ++u) {
    for (int k = 0; k < 60; ++k, ++lines) {
      text +=
          fmt::format("{}::{}::5::{}\n", 100000 + u, 500000 + (u * 7 + k * 13) % 900, 1000000 + k);
    }
  }
  text.pop_back();  // and a last line without a newline
  PreprocessOptions o;
  o.input = write_text(dir.file("big.dat"), text);
  o.out_dir = dir.file("out");
  o.dedup = DedupPolicy::none;
  o.ranking_negatives = 0;
  const auto stats = preprocess(o);
  CHECK(stats["input"]["lines"] == lines);
  CHECK(stats["kept"]["interactions"] == lines);
  CHECK(stats["input"]["sha256"] == sha256_hex(text));
}

// ---- leakage checker

namespace {

/// A clean preprocess output of kMovieLens; returns its directory.
std::string clean_output(const TempDir& dir) {
  auto o = base_options(dir, write_text(dir.file("ratings.dat"), kMovieLens));
  preprocess(o);
  return o.out_dir;
}

void replace_line(const std::string& path, const std::string& from, const std::string& to) {
  auto text = read_text(path);
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  write_text(path, text);
}

std::int64_t count_of(const nlohmann::json& report, const std::string& kind) {
  return report["violations"].contains(kind)
             ? report["violations"][kind]["count"].get<std::int64_t>()
             : 0;
}

}  // namespace

TEST_CASE("check-data: clean output passes, planted leaks are caught", "[preprocess][leakage]") {
  TempDir dir;
  const auto out = clean_output(dir);
  CheckDataOptions c;
  c.dir = out;
  REQUIRE(check_data(c)["ok"] == true);

  SECTION("a future item in a history") {
    // User 1's valid target 13 is at t=300; 14 comes at t=400.
    replace_line(out + "/valid.tsv", "1\t1\t13\t10,11\t300", "1\t1\t13\t10,11,14\t300");
    const auto r = check_data(c);
    CHECK(r["ok"] == false);
    CHECK(count_of(r, "history_not_before_target") == 1);
    CHECK_THAT(r["violations"]["history_not_before_target"]["examples"][0].get<std::string>(),
               Contains("valid.tsv:2: history item \"14\""));
  }
  SECTION("the target in its own history") {
    replace_line(out + "/test.tsv", "1\t1\t14\t10,11,13\t400", "1\t1\t14\t10,11,13,14\t400");
    const auto r = check_data(c);
    CHECK(count_of(r, "target_in_history") == 1);
    CHECK(count_of(r, "history_not_before_target") == 1);
  }
  SECTION("a negative the user interacted with") {
    replace_line(out + "/train.tsv", "0\t1\t15\t10\t200", "0\t1\t13\t10\t200");
    CHECK(count_of(check_data(c), "negative_interacted") == 1);
  }
  SECTION("a validation candidate the user interacted with (valid_candidates.tsv)") {
    // Found beside the other files; 14 is user 1's test target, 15 user 2's valid target.
    write_text(out + "/valid_candidates.tsv",
               "user\titem\thistory\ttime\tnegatives\n1\t13\t10,11\t300\t14,15\n");
    const auto r = check_data(c);
    CHECK(r["checked"]["valid_candidate_rows"] == 1);
    CHECK(count_of(r, "negative_interacted") == 1);
    CHECK_THAT(r["violations"]["negative_interacted"]["examples"][0].get<std::string>(),
               Contains("valid_candidates.tsv:2: candidate \"14\""));
  }
  SECTION("a training target after the user's test target") {
    auto text = read_text(out + "/train.tsv") + "1\t2\t15\t10,11\t350\n";
    write_text(out + "/train.tsv", text);
    const auto r = check_data(c);
    CHECK(count_of(r, "split_order") >= 1);
  }
  SECTION("a vocabulary built with test data") {
    // 14 occurs only as user 1's test target.
    c.vocab = write_text(dir.file("items.vocab"), "<pad>\t0\n<oov>\t0\n10\t3\n14\t1\n");
    const auto r = check_data(c);
    CHECK(count_of(r, "vocab_not_from_train") == 1);
    CHECK_THAT(r["violations"]["vocab_not_from_train"]["examples"][0].get<std::string>(),
               Contains("items.vocab:4: id \"14\""));
  }
  SECTION("history items out of order or unknown") {
    replace_line(out + "/test.tsv", "1\t1\t14\t10,11,13\t400", "1\t1\t14\t11,10,77\t400");
    const auto r = check_data(c);
    CHECK(count_of(r, "history_out_of_order") == 1);
    CHECK(count_of(r, "history_item_not_in_log") == 1);
  }
  SECTION("files without the needed header") {
    write_text(out + "/valid.tsv", "1\t1\t13\t10,11\t300\n");
    CHECK_THROWS_WITH(check_data(c), Contains("valid.tsv:1: check-data needs a header"));
  }
}

TEST_CASE("preprocess: train_sequences.tsv cuts each user's training events into windows",
          "[preprocess]") {
  TempDir dir;
  // A generated log of 40 users with 3 to 20 events each, windows of 3 + 1 events.
  PreprocessOptions o = base_options(dir, dir.file("log.dat"));
  {
    LogOptions lo;
    lo.users = 40;
    lo.items = 60;
    lo.min_events = 3;
    lo.max_events = 20;
    generate_interaction_log(o.input, lo);
  }
  o.min_rating.reset();
  o.min_user_interactions = 3;
  o.max_history = 3;
  const auto stats = preprocess(o);
  // The training events of each user, in timeline order: the log minus valid/test targets.
  std::set<std::string> held_out;
  for (const char* split_name : {"valid.tsv", "test.tsv"}) {
    for (const auto& l : data_lines(dir.file(std::string("out/") + split_name))) {
      const auto f = fields_of(l);
      if (f[0] == "1") held_out.insert(f[1] + "\t" + f[2] + "\t" + f[4]);
    }
  }
  std::map<std::string, std::vector<std::string>> train_events;
  for (const auto& l : data_lines(dir.file("out/interactions.tsv"))) {
    const auto f = fields_of(l);
    if (held_out.count(f[0] + "\t" + f[1] + "\t" + f[2]) == 0) train_events[f[0]].push_back(f[1]);
  }
  // Every window's positions predict the next event: collect the predicted events per user.
  std::map<std::string, std::vector<std::string>> windows;  // user -> windows, newest first
  std::int64_t rows = 0;
  for (const auto& l : data_lines(dir.file("out/train_sequences.tsv"))) {
    const auto f = fields_of(l);
    CHECK(f[0] == "1");
    std::vector<std::string_view> h;
    split(f[3], ',', h);
    CHECK(h.size() <= 3);
    std::string w(f[3]);
    windows[f[1]].push_back(w + "," + f[2]);
    ++rows;
  }
  CHECK(stats["train_sequences"]["rows"] == rows);
  std::int64_t users_checked = 0;
  for (const auto& [user, events] : train_events) {
    if (events.size() < 2) continue;
    // Rebuild the timeline from the windows, oldest first: the older window's target is the
    // newer window's first history item.
    auto& ws = windows[user];
    REQUIRE_FALSE(ws.empty());
    std::vector<std::string> rebuilt;
    for (auto it = ws.rbegin(); it != ws.rend(); ++it) {
      std::vector<std::string_view> items;
      split(*it, ',', items);
      // Every window after the oldest starts with the previous window's last event.
      const std::size_t skip = rebuilt.empty() ? 0 : 1;
      if (skip) CHECK(rebuilt.back() == std::string(items[0]));
      for (std::size_t k = skip; k < items.size(); ++k) rebuilt.emplace_back(items[k]);
    }
    CHECK(rebuilt == events);
    ++users_checked;
  }
  CHECK(users_checked > 20);
}
