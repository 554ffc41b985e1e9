// The item-category side feature: file parsing, the model's use of it, and a run through the
// real binary whose checkpoint carries the item -> category map.
#include <catch2/catch.hpp>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/batch.hpp"
#include "attnrec/data/batching.hpp"
#include "attnrec/data/categories.hpp"
#include "attnrec/model/factory.hpp"
#include "attnrec/util/error.hpp"
#include "support.hpp"

using namespace attnrec;
using namespace attnrec::test;
using Catch::Matchers::Contains;

namespace {

Vocab three_items() {
  return Vocab::from_text("<pad>\t0\n<oov>\t0\na\t3\nb\t2\nc\t1\n", "items.vocab");
}

}  // namespace

TEST_CASE("categories: the file maps onto the item vocabulary", "[categories]") {
  TempDir dir;
  const auto items = three_items();
  // x has two vocabulary items, y one; "zz" is not in the vocabulary; c has no line.
  auto c = read_item_categories(
      write_text(dir.file("cat.tsv"), "item\tcategory\na\tx\nb\tx\nzz\ty\nb\tx\n"), items);
  CHECK(c.categories.size() == 3);  // pad, unknown, x
  CHECK(c.of_item == std::vector<std::int64_t>{0, 1, 2, 2, 1});
  CHECK(c.items_without_category == 1);
  CHECK_THROWS_WITH(
      read_item_categories(write_text(dir.file("bad.tsv"), "item\tcategory\na\tx\na\ty\n"), items),
      Contains("bad.tsv:3: item \"a\" already has category \"x\" (line 2)"));
  CHECK_THROWS_WITH(read_item_categories(write_text(dir.file("h.tsv"), "a\tx\n"), items),
                    Contains("h.tsv:1: expected the header"));
  CHECK_THROWS_WITH(
      read_item_categories(write_text(dir.file("f.tsv"), "item\tcategory\na\n"), items),
      Contains("f.tsv:2: expected \"item<TAB>category\""));
}

TEST_CASE("categories: the model concatenates a category embedding", "[categories][model]") {
  Config config = default_config();
  config.model.embedding.dim = 6;
  config.model.embedding.category = true;
  config.model.embedding.category_dim = 3;
  config.model.encoder.hidden = 5;
  config.model.head.hidden = {4};
  config.data.item_categories = "unused-here.tsv";
  torch::manual_seed(1);
  Recommender model = build_recommender(config, 5, 0, /*category_vocab=*/4);
  CHECK(model->item_size() == 9);
  CHECK(model->named_parameters().contains("category_embedding.weight"));
  model->eval();
  SampleSet s;
  s.has_items = true;
  s.items = {2, 3};
  s.history = {2, 3, 4, 3};
  s.history_offsets = {0, 2, 4};
  s.line_numbers = {1, 2};
  std::vector<std::int64_t> idx = {0, 1};
  const Batch b = make_batch(s, idx.data(), 2);
  torch::NoGradGuard guard;
  const auto before = model->forward(b).logits.clone();
  // Same items, other categories: the scores must change (the feature is used).
  model->set_item_categories(torch::tensor({0, 1, 2, 3, 3}, torch::kInt64));
  const auto after = model->forward(b).logits;
  CHECK_FALSE(torch::allclose(before, after));
  CHECK_THROWS(model->set_item_categories(torch::tensor({0, 1, 2, 9, 3}, torch::kInt64)));
  // The map is a buffer: it travels in the state dict.
  CHECK(model->named_buffers().contains("item_category"));
}

TEST_CASE("cli: taobao log with categories -> preprocess -> train and evaluate with them",
          "[cli][categories]") {
  TempDir dir;
  const auto log = dir.file("taobao.csv");
  REQUIRE(run_cli("generate --log '" + log +
                  "' --log-format taobao --log-users 100 "
                  "--log-items 120 --log-categories 6 --min-events 6 --max-events 25")
              .code == 0);
  const auto data = dir.file("prepared");
  const auto pre = run_cli("preprocess -i '" + log + "' -o '" + data +
                           "' --behaviors pv "
                           "--ranking-negatives 10");
  INFO(pre.err);
  REQUIRE(pre.code == 0);
  const auto stats = nlohmann::json::parse(read_text(data + "/stats.json"));
  CHECK(stats["input"]["format"] == "taobao");
  CHECK(stats["kept"]["categories"] == 6);
  write_text(dir.file("c.json"), R"({"data": {"train": ")" + data + R"(/train.tsv",
      "columns": ["label", "user", "item", "history", "time"],
      "item_categories": ")" + data + R"(/item_categories.tsv"},
      "model": {"embedding": {"dim": 8, "category": true, "category_dim": 4},
                "encoder": {"hidden": 8}, "head": {"hidden": [8]}},
      "train": {"epochs": 1, "batch_size": 64, "threads": 1, "device": "cpu"}})");
  const auto train =
      run_cli("train --config '" + dir.file("c.json") + "' --run-dir '" + dir.file("run") + "'");
  INFO(train.err);
  REQUIRE(train.code == 0);
  CHECK_THAT(train.err, Contains("6 categories"));
  const auto eval = run_cli("evaluate --checkpoint '" + dir.file("run") + "' --data '" + data +
                            "/test.tsv' --ranking sampled");
  INFO(eval.err);
  CHECK(eval.code == 0);
  // Switching the feature on without the file is refused before any data is read.
  const auto bad = run_cli("train --config '" + dir.file("c.json") +
                           "' --set "
                           "data.item_categories= --run-dir '" +
                           dir.file("run2") + "'");
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Contains("/model/embedding/category: true needs /data/item_categories"));
}
