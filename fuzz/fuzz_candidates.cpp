// Harness: the ranking and recommendation inputs: the frozen candidates file of `evaluate
// --ranking sampled`, the interaction log of full ranking and `recommend --log`, and the
// candidate lists of `recommend --candidates`. Byte 0 picks the reader; the rest is the file.
#include <string>
#include <vector>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/dataset.hpp"
#include "attnrec/eval/ranking_eval.hpp"
#include "attnrec/tools/recommend.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  attnrec::fuzz::quiet();
  static const attnrec::Vocab items =
      attnrec::Vocab::from_text("<pad>\t0\n<oov>\t0\ni1\t5\ni2\t4\ni3\t3\n7\t2\n", "items.vocab");
  static const attnrec::Vocab users =
      attnrec::Vocab::from_text("<pad>\t0\n<oov>\t0\nu1\t2\nu2\t1\n", "users.vocab");
  const std::string path = attnrec::fuzz::write_input("input.tsv", data + 1, size - 1);
  attnrec::fuzz::expect_clean([&] {
    switch (data[0] % 4) {
      case 0: {
        attnrec::ReaderOptions o;
        o.max_history = 8;
        o.threads = 1;
        attnrec::read_candidates_file(path, o, items, users);
        break;
      }
      case 1:
        attnrec::users_from_log(path, items, users, 8);
        break;
      case 2:
        attnrec::read_candidate_lists(path, {"u1", "u2", "u9"}, items);
        break;
      default: {
        // Full ranking of a tiny sample set, excluding what the log says each user saw.
        attnrec::ReaderOptions o;
        o.max_history = 8;
        o.threads = 1;
        o.require_both_classes = false;
        const std::string set_path = attnrec::fuzz::scratch() + "/set.tsv";
        if (!std::filesystem::exists(set_path)) {
          std::ofstream(set_path) << "label\tuser\titem\thistory\n1\tu1\ti2\ti1,i3\n1\tu2\ti1\t7\n";
        }
        const auto set = attnrec::read_sample_file(set_path, o, items, users);
        attnrec::full_ranking_input(set, set_path, items, users, path);
        break;
      }
    }
  });
  return 0;
}
