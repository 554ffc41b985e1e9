// The evaluation use case's pieces on their own (eval/evaluation.hpp): which columns a file
// gives a model, the popularity baseline's counts and verdict, the protocol document and the
// "beside --data" discovery rule. The whole use case runs through the binary in test_cli.cpp.
#include <catch2/catch.hpp>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/vocab.hpp"
#include "attnrec/eval/evaluation.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/hash.hpp"
#include "support.hpp"

using namespace attnrec;
using namespace attnrec::test;
using Catch::Matchers::Contains;

namespace {

/// A model config trained on preprocess output (label user item history time), with or
/// without the user embedding.
Config trained_model(bool user_embedding) {
  Config c = default_config();
  c.data.columns = {"label", "user", "item", "history", "time"};
  c.model.embedding.user = user_embedding;
  return c;
}

DataConfig read_with(std::vector<std::string> columns, HeaderMode header = HeaderMode::automatic) {
  DataConfig d = default_config().data;
  d.columns = std::move(columns);
  d.header = header;
  return d;
}

}  // namespace

TEST_CASE("evaluation: model roles are history, item, and user when it is embedded", "[eval]") {
  CHECK(model_roles(trained_model(false)) == std::vector<std::string>{"history", "item"});
  CHECK(model_roles(trained_model(true)) == std::vector<std::string>{"history", "item", "user"});
  Config no_item = trained_model(false);
  no_item.data.columns = {"label", "history"};
  CHECK(model_roles(no_item) == std::vector<std::string>{"history"});
}

TEST_CASE("evaluation: a header gives the file's own layout, in any order", "[eval]") {
  TempDir dir;
  const auto path = write_text(dir.file("s.tsv"), "item\thistory\tlabel\tignore\n5\t1 2\t1\tx\n");
  const auto model = trained_model(false);
  // The run's layout has 5 columns; the header's 4 (one ignored) win.
  const auto cols = scoring_columns(path, model, model.data, true, false);
  CHECK(cols == std::vector<std::string>{"item", "history", "label", "ignore"});
}

TEST_CASE("evaluation: without a header, data.columns names the layout", "[eval]") {
  TempDir dir;
  const auto path = write_text(dir.file("s.tsv"), "1\t7\t5\t1 2\n");
  const auto model = trained_model(true);
  SECTION("a matching data.columns is used as it is") {
    const auto read = read_with({"label", "user", "item", "history"});
    CHECK(scoring_columns(path, model, read, true, false) == read.columns);
  }
  SECTION("the run's 5-column layout on a 4-column file names both counts and the fix") {
    REQUIRE_THROWS_WITH(scoring_columns(path, model, model.data, true, false),
                        Contains("s.tsv:1: has 4 tab-separated fields and no header") &&
                            Contains("data.columns names 5") && Contains("--set") &&
                            !Contains("on_bad_line"));
  }
  SECTION("header=no reads a role-name first line as data, so the count decides") {
    const auto named = write_text(dir.file("n.tsv"), "label\tuser\titem\thistory\n1\t7\t5\t1\n");
    const auto read = read_with({"label", "user", "item", "history"}, HeaderMode::no);
    CHECK(scoring_columns(named, model, read, true, false) == read.columns);
  }
}

TEST_CASE("evaluation: a missing role is named, with how to name the columns", "[eval]") {
  TempDir dir;
  const auto model = trained_model(true);
  SECTION("from a header") {
    const auto path = write_text(dir.file("h.tsv"), "label\titem\thistory\n1\t5\t1 2\n");
    REQUIRE_THROWS_AS(scoring_columns(path, model, model.data, true, false), DataError);
    REQUIRE_THROWS_WITH(scoring_columns(path, model, model.data, true, false),
                        Contains("has no user column") && Contains("from its header") &&
                            Contains("label, history, item, user"));
  }
  SECTION("from data.columns; the label only when metrics need it") {
    const auto path = write_text(dir.file("p.tsv"), "7\t5\t1 2\n");
    const auto read = read_with({"user", "item", "history"});
    REQUIRE_THROWS_WITH(scoring_columns(path, model, read, true, false),
                        Contains("has no label column") && Contains("from data.columns"));
    CHECK(scoring_columns(path, model, read, false, false) == read.columns);
  }
}

TEST_CASE("evaluation: predict may take a file lacking only the label", "[eval]") {
  TempDir dir;
  const auto path = write_text(dir.file("p.tsv"), "7\t5\t1 2\n");
  const auto model = trained_model(true);
  const auto read = read_with({"label", "user", "item", "history"});
  CHECK(scoring_columns(path, model, read, false, true) ==
        std::vector<std::string>{"user", "item", "history"});
  // Two fields fewer is not "lacks the label": refused with both counts.
  const auto short_path = write_text(dir.file("q.tsv"), "5\t1 2\n");
  REQUIRE_THROWS_WITH(scoring_columns(short_path, model, read, false, true),
                      Contains("has 2 tab-separated fields"));
}

TEST_CASE("evaluation: popularity counts positives per item, unknown items last", "[eval]") {
  SampleSet s;
  s.source = "train.tsv";
  s.has_labels = s.has_items = true;
  // item ids: 0 pad, 1 oov, 2..4 real. Item 2: two positives and a negative; 3: one positive;
  // an OOV positive must not make unknown items popular.
  s.items = {2, 2, 2, 3, 4, Vocab::kOov};
  s.labels = {1, 1, 0, 1, 0, 1};
  s.history_offsets = {0, 0, 0, 0, 0, 0, 0};
  const auto counts = popularity_counts(s, 5);
  CHECK(counts == std::vector<double>{0, 0, 2, 1, 0});
  SECTION("sequence windows (next-item training): every history item after the first counts") {
    s.history = {3, 4, 4};
    s.history_offsets = {0, 3, 3, 3, 3, 3, 3};  // row 0 (item 2) has history 3, 4, 4
    CHECK(popularity_counts(s, 5, /*every_position=*/true) == std::vector<double>{0, 0, 2, 1, 2});
  }
  SECTION("without labels every sample counts") {
    s.has_labels = false;
    CHECK(popularity_counts(s, 5) == std::vector<double>{0, 0, 3, 1, 1});
  }
  SECTION("a file without items is refused, naming it") {
    s.has_items = false;
    REQUIRE_THROWS_WITH(popularity_counts(s, 5),
                        Contains("train.tsv") && Contains("needs an item column"));
  }
}

TEST_CASE("evaluation: beats_popularity is a strict AUC comparison", "[eval]") {
  nlohmann::json m = {{"auc", 0.71}, {"baseline_popularity", {{"auc", 0.70}}}};
  CHECK(compare_with_popularity(m));
  CHECK(m["beats_popularity"] == true);
  m["auc"] = 0.70;  // a tie does not beat the baseline
  CHECK_FALSE(compare_with_popularity(m));
  CHECK(m["beats_popularity"] == false);
  m["auc"] = nullptr;  // one class only: no AUC, no claim
  CHECK_FALSE(compare_with_popularity(m));
}

TEST_CASE("evaluation: the protocol document says what the numbers mean", "[eval]") {
  TempDir dir;
  const auto data = write_text(dir.file("test.tsv"), "1\t5\t1 2\n");
  SECTION("without a preprocess protocol") {
    const auto p = describe_protocol(data, "");
    CHECK(p["data_sha256"] == sha256_file(data));
    CHECK(p["preprocess_protocol"].is_null());
    CHECK_THAT(p["split"].get<std::string>(), Contains("unknown"));
    CHECK_THAT(p["ranking_ties"].get<std::string>(), Contains(">="));
  }
  SECTION("with one: split, seed, negatives and the input's hash are copied") {
    const auto proto = write_text(dir.file("protocol.json"), R"({
      "split": {"protocol": "leave_one_out"}, "options": {"seed": 7},
      "negatives": {"per_positive": 4, "sampling": "uniform"}, "input": {"sha256": "ab"}})");
    const auto p = describe_protocol(data, proto);
    CHECK(p["split"] == "leave_one_out");
    CHECK(p["seed"] == 7);
    CHECK(p["negatives_per_positive"] == 4);
    CHECK(p["negative_sampling"] == "uniform");
    CHECK(p["input_sha256"] == "ab");
  }
  SECTION("a broken protocol.json is a DataError naming it") {
    const auto proto = write_text(dir.file("protocol.json"), "{ not json");
    REQUIRE_THROWS_AS(describe_protocol(data, proto), DataError);
    REQUIRE_THROWS_WITH(describe_protocol(data, proto), Contains("protocol.json"));
  }
}

TEST_CASE("evaluation: files are found beside the data only when they exist", "[eval]") {
  TempDir dir;
  const auto data = write_text(dir.file("test.tsv"), "x\n");
  CHECK(file_beside(data, "protocol.json").empty());
  const auto proto = write_text(dir.file("protocol.json"), "{}");
  CHECK(file_beside(data, "protocol.json") == proto);
}
