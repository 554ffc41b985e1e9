#pragma once
/// \file Data-parallel training on PyTorch's c10d engine: the rendezvous (a TCPStore served by
/// rank 0 at MASTER_ADDR:MASTER_PORT, or a FileStore), a Gloo or NCCL process group, and the
/// gradient synchronisation of train/parallel.hpp. This folder is the only place that includes
/// c10d.
///
/// Gradient synchronisation, every step, between backward and the optimizer step: the dense
/// gradients, in the model's parameter order, are copied into fixed buckets of
/// train.distributed.bucket_mb (the plan is fixed at the start from the model alone, so every
/// process and every resume uses the same one), each process's part weighted by its number of
/// loss terms; the per-step values (terms, loss, non-finite flag, samples, signals) travel at the
/// end of the last bucket; the sparse gradients of embedding tables (train.optimizer =
/// lazy_adam) go by an allgather of every process's rows (padded to the largest count), summed
/// where they meet (what Gloo's sparse allreduce does, in collectives NCCL has too). The dense
/// buckets are in flight while the sparse rows travel; then every result is waited for and
/// divided by the total number of terms.

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "attnrec/config/config.hpp"
#include "attnrec/dist/world.hpp"
#include "attnrec/train/parallel.hpp"

namespace attnrec {

/// The first two ranks (lower first) whose GPU identities (host and GPU UUID, one per rank) are
/// equal, or nullopt. NCCL allows one process per GPU; before the NCCL group is built, every
/// rank publishes its identity through the store and all stop with a ConfigError naming the two.
std::optional<std::pair<int, int>> find_shared_gpu(const std::vector<std::string>& identities);

/// Whether this build has c10d's NCCL process group (a CUDA build of LibTorch whose NCCL
/// headers were found: the PyPI build).
bool nccl_built();

/// "process groups: gloo" or "process groups: gloo, nccl (NCCL 2.28.9)", for `attnrec --version`.
std::string describe_process_groups();

/// The process group train.distributed.backend `requested` means for processes on `device`:
/// `auto` is NCCL for a CUDA device when `has_nccl`, else Gloo. NCCL on a CPU device, or in a
/// build without it, is a ConfigError saying what to do.
DistBackend choose_backend(DistBackend requested, const torch::Device& device, bool has_nccl);

/// Connects this process to the other processes of `world` and returns the engine (a world of
/// one is allowed: tests and the GPU check use it). The process group is
/// choose_backend(config.backend, device, nccl_built()); with NCCL, `device` is this process's
/// GPU. Every wait (the rendezvous included) is bounded by config.timeout_s; a failure is a
/// PeerError naming this rank and the operation. Gloo uses the network interface named by
/// GLOO_SOCKET_IFNAME when set, the loopback interface when MASTER_ADDR is a loopback address,
/// and otherwise the address this host's name resolves to.
std::unique_ptr<Parallel> connect_data_parallel(const World& world, const DistributedConfig& config,
                                                const torch::Device& device);

}  // namespace attnrec
