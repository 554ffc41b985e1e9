// The string interner's hash table and the block-wise, multi-threaded sample file reader.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "attnrec/data/dataset.hpp"
#include "attnrec/data/interner.hpp"
#include "attnrec/util/error.hpp"
#include "support.hpp"

using namespace attnrec;
using attnrec::test::TempDir;
using attnrec::test::write_text;
using Catch::Matchers::Contains;

TEST_CASE("string interner: dense indices, lookups and stable tokens through growth", "[data]") {
  StringInterner interner;
  std::vector<std::string> strings = {
      "", "a", "ab", "abc", "abcdefgh", "abcdefghi", std::string(3, '\0'), std::string(5000, 'x')};
  // Strings that share long prefixes and differ in one byte, in every position of a word.
  for (int i = 0; i < 50000; ++i) {
    strings.push_back("item_" + std::to_string(i));
    strings.push_back(std::to_string(i) + "_item");
  }
  for (std::size_t i = 0; i < strings.size(); ++i) {
    CHECK(interner.find(strings[i]) == -1);
    REQUIRE(interner.intern(strings[i]) == static_cast<std::int32_t>(i));
  }
  REQUIRE(interner.size() == static_cast<std::int64_t>(strings.size()));
  // Again: nothing new, same indices; tokens survived every rehash and arena block.
  for (std::size_t i = 0; i < strings.size(); ++i) {
    REQUIRE(interner.intern(strings[i]) == static_cast<std::int32_t>(i));
    REQUIRE(interner.find(strings[i]) == static_cast<std::int32_t>(i));
    REQUIRE(interner.token(static_cast<std::int32_t>(i)) == strings[i]);
  }
  CHECK(interner.size() == static_cast<std::int64_t>(strings.size()));
  CHECK(interner.find("item_50000") == -1);
  CHECK(interner.find(std::string(4999, 'x')) == -1);
  CHECK(interner.find(std::string(2, '\0')) == -1);
}

namespace {

/// A sample file with users, headers, CRLF lines, one very long line, and (optionally) bad
/// lines; `target_bytes` makes it span several read blocks (16 MiB) and parse chunks.
std::string big_file(std::size_t target_bytes, bool with_bad_lines) {
  std::string text = "label\tuser\titem\thistory\n";
  std::uint64_t x = 12345;
  const auto next = [&x]() {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x >> 33;
  };
  std::int64_t line = 1;
  while (text.size() < target_bytes) {
    ++line;
    if (with_bad_lines && line % 9973 == 0) {
      text += "2\tu\ti\tj\n";  // bad label
      continue;
    }
    if (line == 20000) {  // a long history, truncated to max_history
      text += "1\tu_long\titem_1\t";
      for (int k = 0; k < 20000; ++k) text += (k ? "," : "") + std::to_string(k % 700);
      text += "\n";
      continue;
    }
    text += std::to_string(next() % 2) + "\tu" + std::to_string(next() % 3000) + "\titem_" +
            std::to_string(next() % 800) + "\t";
    const auto length = next() % 12;
    for (std::uint64_t k = 0; k < length; ++k) {
      text += (k ? "," : "") + std::to_string(next() % 900);  // some ids out of vocabulary
    }
    text += line % 7 == 0 ? "\r\n" : "\n";
  }
  return text;
}

void check_same(const SampleSet& a, const SampleSet& b) {
  CHECK(a.labels == b.labels);
  CHECK(a.items == b.items);
  CHECK(a.users == b.users);
  CHECK(a.user_groups == b.user_groups);
  CHECK(a.user_group_count == b.user_group_count);
  CHECK(a.history_offsets == b.history_offsets);
  CHECK(a.history == b.history);
  CHECK(a.line_numbers == b.line_numbers);
  CHECK(a.stats.lines == b.stats.lines);
  CHECK(a.stats.samples == b.stats.samples);
  CHECK(a.stats.skipped == b.stats.skipped);
  CHECK(a.stats.header == b.stats.header);
  CHECK(a.stats.positives == b.stats.positives);
  CHECK(a.stats.truncated == b.stats.truncated);
  CHECK(a.stats.item_tokens == b.stats.item_tokens);
  CHECK(a.stats.oov_item_tokens == b.stats.oov_item_tokens);
  CHECK(a.stats.oov_users == b.stats.oov_users);
  CHECK(a.stats.skipped_examples == b.stats.skipped_examples);
}

}  // namespace

TEST_CASE("large files read the same with one thread and several, across read blocks", "[data]") {
  TempDir dir;
  // 18 MiB: two read blocks, each cut into several parse chunks.
  const std::string text = big_file(std::size_t(18) << 20, true);
  const auto path = dir.file("big.tsv");
  write_text(path, text);
  ReaderOptions o;
  o.skip_bad_lines = true;
  o.threads = 1;
  // The training read is always serial: it gives the vocabularies and the reference lines.
  const auto train = read_training_file(path, o, {});
  const auto serial = read_sample_file(path, o, train.items, train.users);
  const std::int64_t expected_lines = std::count(text.begin(), text.end(), '\n');
  CHECK(serial.stats.lines == expected_lines);
  CHECK(serial.stats.header);
  CHECK(serial.stats.skipped == expected_lines / 9973);
  CHECK(serial.stats.truncated >= 1);
  CHECK(serial.user_group_count == train.samples.user_group_count);
  CHECK(serial.line_numbers == train.samples.line_numbers);
  CHECK(serial.line_numbers.back() == expected_lines);
  REQUIRE(serial.stats.skipped_examples.size() == 5);
  CHECK_THAT(serial.stats.skipped_examples[0], Contains(":9973: label must be 0 or 1"));
  CHECK_THAT(serial.stats.skipped_examples[4], Contains(":49865: label must be 0 or 1"));
  for (const std::int64_t threads : {2, 3, 7}) {
    INFO("threads = " << threads);
    o.threads = threads;
    check_same(read_sample_file(path, o, train.items, train.users), serial);
  }
}

TEST_CASE("a parallel read reports the file's first bad line", "[data]") {
  TempDir dir;
  std::string text = big_file(std::size_t(5) << 20, false);
  const std::int64_t lines = std::count(text.begin(), text.end(), '\n');
  const auto path = dir.file("good.tsv");
  write_text(path, text);
  ReaderOptions o;
  o.threads = 1;
  const auto train = read_training_file(path, o, {});
  // Break a line in the last chunk, then one in the second chunk: the latter must be reported.
  const auto break_line = [&text](std::int64_t line) {
    std::size_t pos = 0;
    for (std::int64_t k = 1; k < line; ++k) pos = text.find('\n', pos) + 1;
    text.replace(pos, 1, "x");  // the label
  };
  const std::int64_t late = lines - 10;
  const std::int64_t middle = lines / 3 + 5;
  for (const std::int64_t bad : {late, middle, std::int64_t{2}}) {
    break_line(bad);
    const auto bad_path = dir.file("bad.tsv");
    write_text(bad_path, text);
    for (const std::int64_t threads : {1, 4}) {
      INFO("threads = " << threads << ", first bad line = " << bad);
      o.threads = threads;
      CHECK_THROWS_MATCHES(
          read_sample_file(bad_path, o, train.items, train.users), DataError,
          Catch::Matchers::Message(bad_path + ":" + std::to_string(bad) +
                                   ": label must be 0 or 1, got \"x\" (set data.on_bad_line to "
                                   "\"skip\" to drop such lines)"));
    }
  }
}
