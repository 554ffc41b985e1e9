#pragma once
/// \file Data-parallel training on PyTorch's c10d engine: the rendezvous (a TCPStore served by
/// rank 0 at MASTER_ADDR:MASTER_PORT, or a FileStore), a Gloo process group, and the gradient
/// synchronisation of train/parallel.hpp. This folder is the only place that includes c10d.
///
/// Gradient synchronisation, every step, between backward and the optimizer step: the dense
/// gradients, in the model's parameter order, are copied into fixed buckets of
/// train.distributed.bucket_mb (the plan is fixed at the start from the model alone, so every
/// process and every resume uses the same one), each process's part weighted by its number of
/// loss terms; the per-step values (terms, loss, non-finite flag, samples, signals) travel at the
/// end of the last bucket; the sparse gradients of embedding tables (train.optimizer =
/// lazy_adam) go by Gloo's sparse allreduce. All of them are in flight at once; then every
/// result is waited for and divided by the total number of terms.

#include <memory>

#include "attnrec/config/config.hpp"
#include "attnrec/dist/world.hpp"
#include "attnrec/train/parallel.hpp"

namespace attnrec {

/// Connects this process to the other processes of `world` (a world of several) and returns
/// the engine. Every wait (the rendezvous included) is bounded by config.timeout_s; a failure
/// is a PeerError naming this rank and the operation. Gloo uses the network interface named by
/// GLOO_SOCKET_IFNAME when set, the loopback interface when MASTER_ADDR is a loopback address,
/// and otherwise the address this host's name resolves to.
std::unique_ptr<Parallel> connect_data_parallel(const World& world,
                                                const DistributedConfig& config);

}  // namespace attnrec
