#include "attnrec/util/device.hpp"

#include <fstream>
#include <set>
#include <thread>
#include <utility>

#include "attnrec/util/error.hpp"

namespace attnrec {

torch::Device resolve_device(const std::string& spec) {
  const bool available = torch::cuda::is_available();
  if (spec == "auto") return available ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (spec == "cpu") return torch::Device(torch::kCPU);
  if (spec.rfind("cuda", 0) == 0) {
    if (!available) {
      throw ConfigError("/train/device: \"" + spec + "\" requested but CUDA is not available (no "
                        "GPU visible or a CPU-only LibTorch); use \"cpu\" or \"auto\"");
    }
    const int index = spec == "cuda" ? 0 : std::stoi(spec.substr(5));
    const auto count = static_cast<int>(torch::cuda::device_count());
    if (index >= count) {
      throw ConfigError("/train/device: \"" + spec + "\" but only " + std::to_string(count) +
                        " CUDA device(s) are visible");
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw ConfigError("/train/device: expected auto, cpu, cuda or cuda:N, got \"" + spec + "\"");
}

int physical_cores() {
  // Count distinct (physical id, core id) pairs: hyper-threads share a core and only slow
  // each other down in GEMM-heavy work.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, physical = "0";
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const auto key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    const auto value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "physical id") physical = value;
    if (key == "core id") cores.emplace(physical, value);
  }
  if (!cores.empty()) return static_cast<int>(cores.size());
  return std::max(1u, std::thread::hardware_concurrency());
}

int default_threads(bool background_loader) {
  // The data loader's thread needs a core too: on 2 cores, 1 intra-op thread trained the
  // quickstart model at ~4,600 samples/s and 2 threads at ~1,850 (measured in one run).
  return std::max(1, physical_cores() - (background_loader ? 1 : 0));
}

int configure_threads(std::int64_t threads, bool background_loader) {
  const int n = threads > 0 ? static_cast<int>(threads) : default_threads(background_loader);
  torch::set_num_threads(n);
  return n;
}

void seed_everything(std::uint64_t seed) {
  torch::manual_seed(seed);
  if (torch::cuda::is_available()) torch::cuda::manual_seed_all(seed);
}

}  // namespace attnrec
