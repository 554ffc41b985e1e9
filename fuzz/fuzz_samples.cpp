// Harness: the sample-file reader as train (vocabularies built) and evaluate/predict (fixed
// vocabularies) run it. Byte 0 picks the options: bit 0 skip bad lines, bits 1-2 the header
// mode, bit 3 fixed vocabularies, bits 4-5 the column layout, bit 6 the history separator,
// bit 7 labels optional (predict). The rest is the file.
#include <string>
#include <vector>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/dataset.hpp"
#include "fuzz_support.hpp"

namespace {

const attnrec::Vocab& fixed_items() {
  static const attnrec::Vocab v =
      attnrec::Vocab::from_text("<pad>\t0\n<oov>\t0\ni1\t5\ni2\t4\ni3\t3\n7\t2\n", "items.vocab");
  return v;
}
const attnrec::Vocab& fixed_users() {
  static const attnrec::Vocab v =
      attnrec::Vocab::from_text("<pad>\t0\n<oov>\t0\nu1\t2\nu2\t1\n", "users.vocab");
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  attnrec::fuzz::quiet();
  const std::uint8_t flags = data[0];
  static const std::vector<std::vector<std::string>> layouts = {
      {"label", "user", "item", "history"},
      {"label", "item", "history"},
      {"label", "user", "item", "history", "time"},
      {"label", "ignore", "item", "history"}};
  attnrec::ReaderOptions o;
  o.skip_bad_lines = flags & 1;
  o.header = static_cast<attnrec::HeaderMode>(((flags >> 1) & 3) % 3);
  o.columns = layouts[(flags >> 4) & 3];
  o.history_separator = (flags & 64) ? '|' : ',';
  o.require_both_classes = !(flags & 128);
  o.max_history = 8;
  o.threads = 1;
  const std::string path = attnrec::fuzz::write_input("samples.tsv", data + 1, size - 1);
  attnrec::fuzz::expect_clean([&] {
    if (flags & 8) {
      attnrec::read_sample_file(path, o, fixed_items(), fixed_users());
    } else {
      attnrec::read_training_file(path, o, attnrec::VocabOptions{});
    }
  });
  return 0;
}
