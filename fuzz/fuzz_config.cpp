// Harness: the config parser as `train --config FILE --set ...` runs it. The input is the JSON
// text, optionally followed by a line "--set" and one NAME=VALUE assignment per line.
#include <string>
#include <vector>

#include "attnrec/config/fields.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  attnrec::fuzz::quiet();
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto cut = input.find("\n--set\n");
  const std::string text = input.substr(0, cut);
  std::vector<std::string> sets;
  if (cut != std::string::npos) {
    std::size_t start = cut + 7;
    while (start <= input.size()) {
      const auto end = input.find('\n', start);
      sets.push_back(
          input.substr(start, end == std::string::npos ? std::string::npos : end - start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  attnrec::fuzz::expect_clean([&] {
    const std::string path = attnrec::fuzz::write_input("config.json", data, text.size());
    const attnrec::Config c = attnrec::load_config(path, sets);
    // What --dump and checkpoints do with a valid config: it must round-trip.
    const auto j = attnrec::config_to_json(c);
    const attnrec::Config again = attnrec::config_from_json(j, "round trip");
    if (attnrec::config_to_json(again) != j) {
      std::fprintf(stderr, "DEFECT: the config does not round-trip through JSON\n");
      std::abort();
    }
  });
  return 0;
}
