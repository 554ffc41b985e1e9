// Harness: `attnrec preprocess` on a log in each input format. Byte 0 picks the format (and for
// csv the column mapping), byte 1 the options (dedup, split, k-core, negatives' sampling, a
// rating threshold); the rest is the log. The outputs go to a scratch folder emptied first.
#include <filesystem>
#include <string>
#include <vector>

#include "attnrec/data/preprocess.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  attnrec::fuzz::quiet();
  attnrec::PreprocessOptions o;
  switch (data[0] % 9) {
    case 0:
      o.format = attnrec::LogFormat::movielens;
      break;
    case 1:
      o.format = attnrec::LogFormat::movielens_tsv;
      break;
    case 2:
      o.format = attnrec::LogFormat::sequence;
      break;
    case 3:
      o.format = attnrec::LogFormat::amazon;
      break;
    case 4:
      o.format = attnrec::LogFormat::taobao;
      break;
    case 5:
      o.format = attnrec::LogFormat::csv;
      o.columns = {"user=0", "item=1", "time=2"};
      break;
    case 6:
      o.format = attnrec::LogFormat::csv;
      o.columns = {"user=user", "item=item", "time=ts", "rating=r", "category=c"};
      break;
    case 7:
      o.format = attnrec::LogFormat::csv;
      o.delimiter = "\t";
      o.header = true;
      o.columns = {"user=1", "item=0", "behavior=2"};
      o.behaviors = {"buy", "pv"};
      break;
    default:
      o.format = attnrec::LogFormat::automatic;
      break;
  }
  const std::uint8_t options = data[1];
  o.dedup = static_cast<attnrec::DedupPolicy>((options & 3) % 3);
  o.split =
      (options & 4) ? attnrec::SplitProtocol::temporal : attnrec::SplitProtocol::leave_last_out;
  o.min_user_interactions = (options & 8) ? 2 : 0;
  o.min_item_interactions = (options & 16) ? 2 : 0;
  o.sampling = (options & 32) ? attnrec::PreprocessSampling::popularity
                              : attnrec::PreprocessSampling::uniform;
  if (options & 64) o.min_rating = 3.0;
  o.ranking_negatives = (options & 128) ? 3 : 0;
  o.max_history = 5;
  const std::string name = o.format == attnrec::LogFormat::movielens ? "ratings.dat"
                           : o.format == attnrec::LogFormat::amazon  ? "log.json"
                                                                     : "log.txt";
  o.input = attnrec::fuzz::write_input(name, data + 2, size - 2);
  o.out_dir = attnrec::fuzz::scratch() + "/preprocessed";
  std::error_code ec;
  std::filesystem::remove_all(o.out_dir, ec);
  attnrec::fuzz::expect_clean([&] {
    o.validate();
    attnrec::preprocess(o);
  });
  return 0;
}
