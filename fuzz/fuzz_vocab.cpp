// Harness: the vocabulary reader (a checkpoint's items.vocab / users.vocab) and the categories
// reader (data.categories). Byte 0 bit 0 picks which; the rest is the file.
#include <string>

#include "attnrec/data/categories.hpp"
#include "attnrec/data/vocab.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  attnrec::fuzz::quiet();
  static const attnrec::Vocab items =
      attnrec::Vocab::from_text("<pad>\t0\n<oov>\t0\ni1\t5\ni2\t4\ni3\t3\n7\t2\n", "items.vocab");
  const std::string path = attnrec::fuzz::write_input("file.tsv", data + 1, size - 1);
  attnrec::fuzz::expect_clean([&] {
    if (data[0] & 1) {
      attnrec::read_item_categories(path, items);
    } else {
      const auto v = attnrec::Vocab::load(path);
      // A vocabulary that loads must write back to the same text.
      if (attnrec::Vocab::from_text(v.to_text(), "again").to_text() != v.to_text()) {
        std::fprintf(stderr, "DEFECT: the vocabulary does not round-trip\n");
        std::abort();
      }
    }
  });
  return 0;
}
