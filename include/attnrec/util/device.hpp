#pragma once
/// \file Device selection, CPU threads and seeding.

#include <cstdint>
#include <string>
#include <torch/torch.h>

namespace attnrec {

/// Resolves "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N". Asking for CUDA
/// where none is available is a ConfigError naming the option.
torch::Device resolve_device(const std::string& spec);

/// Physical cores of this machine (logical CPUs when the topology cannot be read).
int physical_cores();

/// Intra-op threads used when none are configured: the physical cores (with OpenBLAS limited
/// to one thread, the data loader's thread no longer needs a core of its own).
int default_threads();

/// Sets LibTorch's intra-op threads: `threads`, or default_threads() when 0. Returns the count.
int configure_threads(std::int64_t threads);

/// Seeds every generator in use (torch CPU and CUDA).
void seed_everything(std::uint64_t seed);

}  // namespace attnrec
