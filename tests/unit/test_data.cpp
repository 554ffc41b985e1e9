#include <catch2/catch.hpp>

#include "attnrec/data/batch.hpp"
#include "attnrec/data/batching.hpp"
#include "attnrec/data/dataset.hpp"
#include "attnrec/data/loader.hpp"
#include "attnrec/util/error.hpp"
#include "support.hpp"

using namespace attnrec;
using attnrec::test::TempDir;
using attnrec::test::write_text;
using Catch::Matchers::Contains;

namespace {

std::string data_error(const std::string& text, ReaderOptions options = {}) {
  TempDir dir;
  const auto path = write_text(dir.file("d.tsv"), text);
  try {
    read_training_file(path, options, {});
  } catch (const DataError& e) {
    std::string msg = e.what();
    msg.replace(msg.find(path), path.size(), "d.tsv");
    return msg;
  }
  return "no error";
}

const char* kSmall =
    "label\tuser\titem\thistory\n"
    "1\tu1\ta\tb,c,a\n"
    "0\tu2\tb\tc\n"
    "1\tu1\tc\t\n"
    "0\tu3\td\ta,b,c,d,e\n";

}  // namespace

TEST_CASE("reads the default layout with a header", "[data]") {
  TempDir dir;
  const auto path = write_text(dir.file("t.tsv"), kSmall);
  ReaderOptions o;
  o.max_history = 3;
  const auto data = read_training_file(path, o, {});
  const auto& s = data.samples;
  CHECK(s.stats.header);
  CHECK(s.size() == 4);
  CHECK(s.stats.positives == 2);
  CHECK(s.labels == std::vector<std::uint8_t>{1, 0, 1, 0});
  // Truncation keeps the most recent items: "a,b,c,d,e" -> "c,d,e".
  CHECK(s.history_length(3) == 3);
  CHECK(data.items.token(s.history[s.history_offsets[3]]) == "c");
  CHECK(data.items.token(s.history[s.history_offsets[3] + 2]) == "e");
  CHECK(s.stats.truncated == 1);
  CHECK(s.history_length(2) == 0);  // an empty history is a valid sample
  // Vocabulary: most frequent first, ties by first appearance; 0 = pad, 1 = OOV.
  CHECK(data.items.token(0) == "<pad>");
  CHECK(data.items.token(1) == "<oov>");
  CHECK(data.items.token(2) == "c");  // c appears 4 times among kept ids
  CHECK(data.items.lookup("zzz") == Vocab::kOov);
  CHECK(s.line_numbers == std::vector<std::int64_t>{2, 3, 4, 5});
  CHECK(s.user_group_count == 3);
  CHECK(s.user_groups == std::vector<std::int32_t>{0, 1, 0, 2});
}

TEST_CASE("header detection: none, auto and a mismatching layout", "[data]") {
  TempDir dir;
  ReaderOptions o;
  const auto no_header = write_text(dir.file("a.tsv"), "1\tu\ti\tj\n0\tu\tj\ti\n");
  CHECK_FALSE(read_training_file(no_header, o, {}).samples.stats.header);
  CHECK(read_training_file(no_header, o, {}).samples.size() == 2);

  CHECK(data_error("label\titem\tuser\thistory\n1\tu\ti\tj\n") ==
        "d.tsv:1: the header names the columns [label, item, user, history] but data.columns "
        "is [label, user, item, history]; the file has a different layout than the config "
        "expects (fix the file or set data.columns)");
  ReaderOptions forced;
  forced.header = HeaderMode::yes;
  CHECK(data_error("click\tuid\tiid\thist\n1\tu\ti\tj\n0\tu\ti\tj\n", forced) == "no error");
  CHECK(data_error("click\tuid\tiid\thist\n1\tu\ti\tj\n") ==
        "d.tsv:1: label must be 0 or 1, got \"click\" (if this line names the columns, set "
        "data.header to \"yes\") (set data.on_bad_line to \"skip\" to drop such lines)");
}

TEST_CASE("custom column layouts", "[data]") {
  TempDir dir;
  ReaderOptions o;
  o.columns = {"history", "ignore", "label"};
  const auto path = write_text(dir.file("seq.tsv"), "w1,w2\tjunk\t1\nw3\tx\t0\n");
  const auto data = read_training_file(path, o, {});
  CHECK_FALSE(data.samples.has_items);
  CHECK_FALSE(data.samples.has_users);
  CHECK(data.samples.items.empty());
  CHECK(data.samples.size() == 2);
  CHECK(data.items.size() == 2 + 3);

  o.history_separator = ' ';
  o.columns = {"label", "history"};
  const auto spaced = write_text(dir.file("sp.tsv"), "1\tw1 w2 w3\n0\tw2\n");
  CHECK(read_training_file(spaced, o, {}).samples.history_length(0) == 3);
}

TEST_CASE("min_count, max_size and OOV accounting", "[data]") {
  TempDir dir;
  const auto train = write_text(dir.file("t.tsv"), kSmall);
  VocabOptions v;
  v.min_count = 2;
  const auto data = read_training_file(train, ReaderOptions{}, v);
  // Kept-id counts: a 3, b 3, c 4, d 2, e 1 -> e is rare.
  CHECK(data.items.size() == 2 + 4);
  CHECK(data.items.lookup("e") == Vocab::kOov);
  CHECK(data.items.count(Vocab::kOov) == 1);
  CHECK(data.samples.stats.oov_item_tokens == 1);
  // Users: u1 twice, u2 and u3 once.
  CHECK(data.users.size() == 3);

  VocabOptions capped;
  capped.max_size = 2;
  CHECK(read_training_file(train, ReaderOptions{}, capped).items.size() == 4);

  const auto test = write_text(dir.file("v.tsv"), "1\tu9\tnew\ta,new,e\n0\tu1\tb\tc\n");
  const auto s = read_sample_file(test, ReaderOptions{}, data.items, data.users);
  CHECK(s.stats.item_tokens == 6);
  CHECK(s.stats.oov_item_tokens == 3);  // new (candidate), new, e
  CHECK(s.stats.oov_rate() == Approx(0.5));
  CHECK(s.stats.oov_users == 1);
  CHECK(s.items[0] == Vocab::kOov);
}

TEST_CASE("malformed lines: error names file, line and problem", "[data]") {
  const std::string suffix = " (set data.on_bad_line to \"skip\" to drop such lines)";
  CHECK(data_error("1\tu\ti\n") ==
        "d.tsv:1: expected 4 tab-separated fields (label, user, item, history), got 3" + suffix);
  CHECK(data_error("1\tu\ti\tj\n2\tu\ti\tj\n") ==
        "d.tsv:2: label must be 0 or 1, got \"2\"" + suffix);
  CHECK(data_error("1\tu\t\tj\n") == "d.tsv:1: empty item id" + suffix);
  CHECK(data_error("1\tu\ti\tj,,k\n") ==
        "d.tsv:1: empty item id at position 1 of the history (separator ',' doubled or "
        "trailing)" +
            suffix);
  CHECK(data_error("1\tu\ti\tj;k\n") ==
        "d.tsv:1: history item \"j;k\" contains ' ', ';' or '|': items must be separated by ',' "
        "(data.history_separator)" +
            suffix);
  // The first problem in the history wins; a configured separator is not a stray one.
  CHECK(data_error("1\tu\ti\tj k,,m\n") ==
        "d.tsv:1: history item \"j k\" contains ' ', ';' or '|': items must be separated by ',' "
        "(data.history_separator)" +
            suffix);
  CHECK(data_error("1\tu\ti\tj,,k m\n") ==
        "d.tsv:1: empty item id at position 1 of the history (separator ',' doubled or "
        "trailing)" +
            suffix);
  ReaderOptions semicolon;
  semicolon.history_separator = ';';
  CHECK(data_error("1\tu\ti\tj;k|m;n\n", semicolon) ==
        "d.tsv:1: history item \"k|m\" contains ' ', ';' or '|': items must be separated by ';' "
        "(data.history_separator)" +
            suffix);
  CHECK(data_error("1\tu\ti\tj;k\n0\tu\ti\tk;j\n", semicolon) == "no error");
  CHECK(data_error("1 u i j\n") ==
        "d.tsv:1: expected 4 tab-separated fields (label, user, item, history), got 1 (the line "
        "contains spaces: fields must be separated by tabs)" +
            suffix);
  CHECK(data_error("1\tu\ti\tj\n\n0\tu\ti\tj\n") == "d.tsv:2: empty line" + suffix);
  CHECK(data_error("") == "d.tsv: file is empty");
  CHECK(data_error("label\tuser\titem\thistory\n") ==
        "d.tsv: no samples (1 lines, 1 header, 0 skipped as malformed)");
  CHECK(data_error("1\tu\ti\tj\n1\tv\ti\tj\n") ==
        "d.tsv: all 2 labels are 1; training and AUC need both positive (1) and negative (0) "
        "samples");
  CHECK(data_error("0\tu\ti\tj\n") ==
        "d.tsv: all 1 labels are 0; training and AUC need both positive (1) and negative (0) "
        "samples");
}

TEST_CASE("on_bad_line = skip drops and counts malformed lines", "[data]") {
  TempDir dir;
  const auto path =
      write_text(dir.file("d.tsv"), "1\tu\ti\tj\r\n1\tu\ti\n0\tu\tj\ti\nx\tu\ti\tj\n");
  ReaderOptions o;
  o.skip_bad_lines = true;
  const auto data = read_training_file(path, o, {});
  CHECK(data.samples.size() == 2);
  CHECK(data.samples.stats.skipped == 2);
  CHECK(data.samples.stats.lines == 4);
  REQUIRE(data.samples.stats.skipped_examples.size() == 2);
  CHECK_THAT(data.samples.stats.skipped_examples[0], Contains("d.tsv:2: expected 4"));
  // Skipped lines leave no trace in the vocabulary or arrays; CRLF line ends are accepted.
  CHECK(data.items.size() == 4);
  CHECK(data.samples.line_numbers == std::vector<std::int64_t>{1, 3});
}

TEST_CASE("batches are right-padded with a mask", "[data]") {
  TempDir dir;
  const auto data = read_training_file(write_text(dir.file("t.tsv"), kSmall), ReaderOptions{}, {});
  const std::vector<std::int64_t> idx = {0, 2, 1};
  const Batch b = make_batch(data.samples, idx.data(), 3);
  REQUIRE(b.history.sizes() == std::vector<std::int64_t>{3, 3});
  CHECK(b.mask.sizes() == b.history.sizes());
  CHECK(torch::equal(b.lengths, torch::tensor({3, 0, 1}, torch::kInt64)));
  const auto& items = data.items;
  CHECK(b.history[0][0].item<std::int64_t>() == items.lookup("b"));
  CHECK(b.history[2][0].item<std::int64_t>() == items.lookup("c"));
  CHECK(b.history[2][1].item<std::int64_t>() == Vocab::kPad);
  CHECK(b.mask.sum().item<std::int64_t>() == 4);
  CHECK(b.mask[1].any().item<bool>() == false);  // all-padding row
  CHECK(b.mask[2][0].item<bool>());
  CHECK_FALSE(b.mask[2][1].item<bool>());
  CHECK(torch::equal(b.history.masked_select(b.mask.logical_not()),
                     torch::zeros({5}, torch::kInt64)));
  CHECK(b.label.dtype() == torch::kFloat32);
  CHECK(b.label[0].item<float>() == 1.0f);
  CHECK(b.item[1].item<std::int64_t>() == items.lookup("c"));
  CHECK(torch::equal(b.index, torch::tensor({0, 2, 1}, torch::kInt64)));

  // A batch of empty histories still has one (padding) column.
  const std::vector<std::int64_t> empty = {2};
  CHECK(make_batch(data.samples, empty.data(), 1).history.sizes() ==
        std::vector<std::int64_t>{1, 1});
}

TEST_CASE("shuffling is deterministic from (seed, epoch)", "[data]") {
  const auto a = epoch_order(1000, true, 42, 0);
  CHECK(a == epoch_order(1000, true, 42, 0));
  CHECK(a != epoch_order(1000, true, 42, 1));
  CHECK(a != epoch_order(1000, true, 43, 0));
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == epoch_order(1000, false, 42, 0));
  // Golden prefix: pins the portable RNG so orders are identical on every machine.
  const auto small = epoch_order(8, true, 1, 0);
  CHECK(small.size() == 8);
  CHECK(small != epoch_order(8, false, 1, 0));
}

TEST_CASE("the loader yields the same batches with and without prefetching, and resumes",
          "[data]") {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 103; ++i) {
    text += std::to_string(i % 2) + "\tu" + std::to_string(i % 7) + "\ti" + std::to_string(i) +
            "\ti" + std::to_string(i + 1) + ",i" + std::to_string(i + 2) + "\n";
  }
  const auto data = read_training_file(write_text(dir.file("t.tsv"), text), ReaderOptions{}, {});
  auto collect = [&](std::int64_t prefetch, std::int64_t epoch, std::int64_t first) {
    DataLoader loader(
        data.samples,
        LoaderOptions().with_batch_size(10).with_shuffle(true).with_seed(5).with_prefetch(
            prefetch));
    loader.start_epoch(epoch, first);
    std::vector<torch::Tensor> indices;
    while (auto b = loader.next()) indices.push_back(b->index);
    CHECK_FALSE(loader.next().has_value());  // stays at the end
    return indices;
  };
  const auto direct = collect(0, 3, 0);
  const auto prefetched = collect(2, 3, 0);
  REQUIRE(direct.size() == 11);
  REQUIRE(prefetched.size() == 11);
  for (std::size_t k = 0; k < direct.size(); ++k) CHECK(torch::equal(direct[k], prefetched[k]));
  CHECK(direct.back().size(0) == 3);  // last partial batch kept
  const auto resumed = collect(2, 3, 4);
  REQUIRE(resumed.size() == 7);
  for (std::size_t k = 0; k < resumed.size(); ++k) CHECK(torch::equal(resumed[k], direct[k + 4]));
  // Every sample appears exactly once per epoch.
  CHECK(std::get<0>(torch::sort(torch::cat(direct))).equal(torch::arange(103)));
  // Abandoning an epoch halfway (destructor with a full queue) must not hang.
  DataLoader loader(data.samples, LoaderOptions().with_batch_size(1).with_prefetch(1));
  loader.start_epoch(0);
  CHECK(loader.next().has_value());
}

TEST_CASE("vocabulary files round-trip and bad ones are named", "[data]") {
  TempDir dir;
  const auto data = read_training_file(write_text(dir.file("t.tsv"), kSmall), ReaderOptions{}, {});
  data.items.save(dir.file("items.vocab"));
  const Vocab back = Vocab::load(dir.file("items.vocab"));
  REQUIRE(back.size() == data.items.size());
  for (std::int32_t id = 0; id < back.size(); ++id) {
    CHECK(back.token(id) == data.items.token(id));
    CHECK(back.count(id) == data.items.count(id));
  }
  write_text(dir.file("bad.vocab"), "<pad>\t0\n<oov>\t0\nx\tnotanumber\n");
  try {
    Vocab::load(dir.file("bad.vocab"));
    FAIL("expected an error");
  } catch (const CheckpointError& e) {
    CHECK_THAT(e.what(), Contains("bad.vocab:3: expected \"id<TAB>count\""));
  }
  CHECK_THROWS_AS(Vocab::load(dir.file("missing.vocab")), CheckpointError);
}
