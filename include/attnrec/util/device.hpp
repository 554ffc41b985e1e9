#pragma once
/// \file Device selection, CPU threads and seeding.

#include <torch/torch.h>
#include <cstdint>
#include <string>

namespace attnrec {

/// Resolves "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N". "cuda" and a
/// CUDA "auto" mean cuda:`default_index` (a process of a multi-process job passes its
/// LOCAL_RANK: one GPU per process). Anything else, or asking for CUDA where none is available
/// or for a device index past the visible devices, is a ConfigError naming `source` (the
/// option).
torch::Device resolve_device(const std::string& spec, const std::string& source = "/train/device",
                             int default_index = 0);

/// train.deterministic for a CUDA run, before its first CUDA kernel: on, CUDA runs repeat bit for
/// bit (what exact resume needs): deterministic cuDNN and PyTorch algorithms, and cuBLAS's fixed
/// workspace (CUBLAS_WORKSPACE_CONFIG=:4096:8 unless set); off, LibTorch's defaults.
void set_cuda_determinism(bool deterministic);

/// Physical cores of this machine (logical CPUs when the topology cannot be read).
int physical_cores();

/// Intra-op threads used when none are configured: the physical cores (with OpenBLAS limited
/// to one thread, the data loader's thread no longer needs a core of its own).
int default_threads();

/// Most intra-op threads accepted from a config or flag.
constexpr std::int64_t kMaxThreads = 1024;

/// Logical CPUs of this machine (at least 1).
int logical_cpus();

/// The one place thread counts from users are checked: `threads` must be 0 (default_threads())
/// to kMaxThreads (a ConfigError naming `source` otherwise) and is capped at the logical CPUs.
/// Sets LibTorch's intra-op threads and limits OpenBLAS to one thread; returns the count.
int configure_threads(std::int64_t threads, const std::string& source = "/train/threads");

/// Seeds every generator in use (torch CPU and CUDA).
void seed_everything(std::uint64_t seed);

/// What this binary was built against and what it sees: `attnrec --version` prints it.
struct BuildInfo {
  std::string torch_version;  ///< the LibTorch compiled against, e.g. "2.11.0"
  bool cuda_linked = false;   ///< libtorch_cuda is loaded (a CUDA build of LibTorch)
  int cuda_devices = 0;       ///< CUDA devices visible (0 without a GPU or driver)
};
BuildInfo build_info();

/// build_info() as one line, e.g. "LibTorch 2.11.0, CUDA build, 0 CUDA devices visible".
std::string describe_build();

}  // namespace attnrec
