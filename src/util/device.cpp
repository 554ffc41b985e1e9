#include "attnrec/util/device.hpp"

#include <dlfcn.h>
#include <fstream>
#include <set>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "attnrec/util/device_spec.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/torch_compat.hpp"

namespace attnrec {

torch::Device resolve_device(const std::string& text, const std::string& source,
                             int default_index) {
  const auto spec = parse_device_spec(text);
  if (!spec) {
    throw ConfigError(fmt::format("{}: expected auto, cpu, cuda or cuda:N (N from 0 to {}), got {}",
                                  source, kMaxCudaIndex, quote_for_message(text)));
  }
  const bool available = torch::cuda::is_available();
  switch (spec->kind) {
    case DeviceSpec::Kind::automatic:
      if (!available) return torch::Device(torch::kCPU);
      break;
    case DeviceSpec::Kind::cpu:
      return torch::Device(torch::kCPU);
    case DeviceSpec::Kind::cuda:
      if (!available) {
        throw ConfigError(source + ": \"" + text +
                          "\" requested but CUDA is not available (no GPU "
                          "visible or a CPU-only LibTorch); use \"cpu\" or \"auto\"");
      }
      break;
  }
  const int index = spec->explicit_index ? spec->index : default_index;
  const auto count = static_cast<int>(torch::cuda::device_count());
  if (index >= count && spec->explicit_index) {
    throw ConfigError(
        fmt::format("{}: \"{}\" but only {} CUDA device(s) are visible", source, text, count));
  }
  if (index >= count) {
    throw ConfigError(fmt::format(
        "{}: \"{}\" means cuda:{} in this process (its LOCAL_RANK) but only {} CUDA device(s) "
        "are visible; start at most one process per GPU on each host, or name the devices "
        "(cuda:N)",
        source, text, index, count));
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

void set_cuda_determinism(bool deterministic) {
  // Exact resume on a GPU needs the same kernels on every run: cuBLAS picks its reduction
  // order by workspace (fixed here before its first handle exists, unless the user set it),
  // cuDNN by benchmark unless told to be deterministic, and scatter-adds (embedding and
  // index_add backward) use atomics unless deterministic algorithms are on. warn_only: an op
  // without a deterministic kernel warns instead of stopping the run.
  if (deterministic) ::setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  auto& context = at::globalContext();
  context.setBenchmarkCuDNN(false);
  context.setDeterministicCuDNN(deterministic);
  context.setDeterministicAlgorithms(deterministic, /*warn_only=*/true);
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

int default_threads() {
  // Measured earlier with OpenBLAS's own spinning workers, 1 intra-op thread beat 2 on 2 cores
  // (the loader thread lost its core). With OpenBLAS limited to one thread, 2 beat 1: ~3,100
  // vs ~2,400 samples/s (`attnrec bench`, W1, 20k samples), so every core is used.
  return std::max(1, physical_cores());
}

namespace {

/// OpenBLAS's own worker threads busy-wait with sched_yield between calls. Under LibTorch, which
/// calls BLAS from its own (OpenMP) threads with many small GEMMs, they only burn a core:
/// measured on 2 cores, `attnrec bench` (W1, 20k samples) trained at 2,468 vs 1,795 samples/s
/// (1 intra-op thread) and 2,474 vs 782 (2 threads) with 1 vs the default 2 OpenBLAS threads,
/// and a full-ranking evaluation took 3.8 s instead of 7.6 s (4 s of it in sched_yield).
/// OpenBLAS reads OPENBLAS_NUM_THREADS before main(), so the library call is used; an explicit
/// OPENBLAS_NUM_THREADS from the user wins, and a BLAS without the symbol is left alone.
void limit_blas_threads() {
  if (std::getenv("OPENBLAS_NUM_THREADS") != nullptr) return;
  using SetThreads = void (*)(int);
  if (auto* set = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(1);
  }
}

}  // namespace

int logical_cpus() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

int configure_threads(std::int64_t threads, const std::string& source) {
  if (threads < 0 || threads > kMaxThreads) {
    throw ConfigError(fmt::format("{}: expected 0 (the physical cores) to {} threads, got {}",
                                  source, kMaxThreads, threads));
  }
  int n = threads > 0 ? static_cast<int>(threads) : default_threads();
  // More threads than CPUs only add start-up cost and contention.
  if (n > logical_cpus()) {
    spdlog::warn("{}: {} threads requested, this machine has {} CPUs; using {}", source, n,
                 logical_cpus(), logical_cpus());
    n = logical_cpus();
  }
  limit_blas_threads();
  torch::set_num_threads(n);
  return n;
}

void seed_everything(std::uint64_t seed) {
  torch::manual_seed(seed);
  if (torch::cuda::is_available()) torch::cuda::manual_seed_all(seed);
}

BuildInfo build_info() {
  BuildInfo info;
  info.torch_version = compat::torch_version();
  // A CUDA build of LibTorch links libtorch_cuda.so into every program built against it (its
  // CMake config keeps it with --no-as-needed); a CPU build has no such library.
  if (void* handle = ::dlopen("libtorch_cuda.so", RTLD_LAZY | RTLD_NOLOAD)) {
    info.cuda_linked = true;
    ::dlclose(handle);
  }
  info.cuda_devices =
      torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  return info;
}

std::string describe_build() {
  const auto info = build_info();
  return fmt::format("LibTorch {}, {} build, {} CUDA device{} visible", info.torch_version,
                     info.cuda_linked ? "CUDA" : "CPU-only", info.cuda_devices,
                     info.cuda_devices == 1 ? "" : "s");
}

}  // namespace attnrec
