// Harness: the checkpoint reader as `inspect`, `evaluate` and `predict` run it (bytes -> meta
// -> vocabularies -> model -> weights). Byte 0 bit 0 picks the mode:
//   0: the rest is the checkpoint file as it is (the header and checksum checks);
//   1: bytes 1-4 are a meta length n (little-endian), then n bytes of meta JSON, then the
//      LibTorch payload; the harness writes the header with the right sizes and SHA-256, so
//      that the meta JSON reader and LibTorch's archive parsing are reached.
// The checkpoint is written into a copy of a real run directory (ATTNREC_FUZZ_RUN, made by
// scripts/fuzz.sh) so that the vocabularies it references exist.
#include <cstring>
#include <filesystem>
#include <string>

#include "attnrec/io/checkpoint.hpp"
#include "attnrec/util/hash.hpp"
#include "fuzz_support.hpp"

namespace {

namespace fs = std::filesystem;

/// scratch/run/ with the vocabularies of ATTNREC_FUZZ_RUN, and its checkpoints/ folder.
const std::string& run_copy() {
  static const std::string dir = [] {
    const std::string run = attnrec::fuzz::scratch() + "/run";
    fs::create_directories(run + "/checkpoints");
    if (const char* source = std::getenv("ATTNREC_FUZZ_RUN")) {
      for (const char* name : {"items.vocab", "users.vocab", "categories.vocab"}) {
        std::error_code ec;
        fs::copy_file(fs::path(source) / name, fs::path(run) / name,
                      fs::copy_options::overwrite_existing, ec);
      }
    }
    return run;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  attnrec::fuzz::quiet();
  const std::string path = run_copy() + "/checkpoints/fuzz.pt";
  std::string file;
  if ((data[0] & 1) == 0) {
    file.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  } else {
    if (size < 5) return 0;
    std::uint32_t n = 0;
    std::memcpy(&n, data + 1, 4);
    const std::string rest(reinterpret_cast<const char*>(data + 5), size - 5);
    const std::string meta = rest.substr(0, std::min<std::size_t>(n, rest.size()));
    const std::string payload = rest.substr(meta.size());
    if (meta.empty()) return 0;
    attnrec::Sha256 h;
    h.update(meta);
    h.update(payload);
    file = "ATTNREC-CHECKPOINT " + std::to_string(attnrec::kCheckpointFormatVersion) + "\n" +
           std::to_string(meta.size()) + " " + std::to_string(payload.size()) + " " + h.hex() +
           "\n" + meta + payload;
  }
  attnrec::fuzz::write_input("run/checkpoints/fuzz.pt",
                             reinterpret_cast<const std::uint8_t*>(file.data()), file.size());
  attnrec::fuzz::expect_clean([&] {
    attnrec::read_checkpoint_meta(path);     // inspect
    attnrec::load_model(path, torch::kCPU);  // evaluate, predict
  });
  return 0;
}
