#include "attnrec/dist/data_parallel.hpp"

// c10d declares ProcessGroupGloo only when the build says it has Gloo; both LibTorch builds
// attnrec supports do (libtorch_cpu exports it), but neither's CMake config defines this.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
// NCCL: CMake sets ATTNREC_HAS_NCCL for this file in a CUDA build of LibTorch whose NCCL headers
// it found (the PyPI build); c10d declares ProcessGroupNCCL only under USE_C10D_NCCL.
#ifndef ATTNREC_HAS_NCCL
#define ATTNREC_HAS_NCCL 0
#endif
#if ATTNREC_HAS_NCCL && !defined(USE_C10D_NCCL)
#define USE_C10D_NCCL 1
#endif

#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <unordered_set>
#if ATTNREC_HAS_NCCL
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>
#include <nccl.h>
#include <unistd.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "attnrec/io/checkpoint.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/hash.hpp"
#include "attnrec/util/logging.hpp"
#include "attnrec/util/torch_compat.hpp"

namespace attnrec {

namespace {

/// A process group of either backend.
using Group = compat::ProcessGroupBase;
/// A collective in flight (c10d::ProcessGroup::Work in LibTorch 1.13, c10d::Work in 2.x).
using WorkPtr =
    decltype(std::declval<Group&>().allreduce(std::declval<std::vector<at::Tensor>&>()));
using Gloo = c10d::ProcessGroupGloo;

/// Values that travel at the end of the last bucket (StepTotals, in its order).
constexpr std::int64_t kTail = 6;
/// Fingerprint slots compared across processes (a fixed size, so that processes with different
/// lists still exchange the same number of values).
constexpr std::int64_t kFingerprintSlots = 16;

std::uint64_t digest_of(const std::string& text) {
  return std::stoull(sha256_hex(text).substr(0, 16), nullptr, 16);
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

/// The first line of a c10d message (they carry long backtraces and context).
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::chrono::milliseconds timeout_of(const DistributedConfig& config) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(config.timeout_s * 1e3));
}

/// A Gloo group: on GLOO_SOCKET_IFNAME's interface when set, the loopback interface when rank
/// 0 is on this host's loopback address, else the address this host's name resolves to.
c10::intrusive_ptr<Group> make_gloo(const c10::intrusive_ptr<c10d::Store>& store,
                                    const World& world, const DistributedConfig& config) {
  auto options = Gloo::Options::create(timeout_of(config));
  const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
  if (interface != nullptr && *interface != '\0') {
    options->devices.push_back(Gloo::createDeviceForInterface(interface));
  } else if (is_loopback(world.master_addr)) {
    options->devices.push_back(Gloo::createDeviceForHostname("127.0.0.1"));
  } else {
    options->devices.push_back(Gloo::createDefaultDevice());
  }
  return c10::make_intrusive<Gloo>(store, world.rank, world.world_size, options);
}

#if ATTNREC_HAS_NCCL
/// An NCCL group bound to `device` (this process's GPU), its communicator created now rather
/// than at the first collective, so that a failure is reported as part of the rendezvous.
c10::intrusive_ptr<Group> make_nccl(const c10::intrusive_ptr<c10d::Store>& store,
                                    const World& world, const DistributedConfig& config,
                                    const torch::Device& device) {
  c10::cuda::set_device(device.index());
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout_of(config);
  auto group =
      c10::make_intrusive<c10d::ProcessGroupNCCL>(store, world.rank, world.world_size, options);
  group->setBoundDeviceId(device);
  group->eagerConnectSingleDevice(device);
  return group;
}
/// Ends an NCCL group's communicators and watchdog before it is destroyed (LibTorch 2.x warns
/// otherwise).
void close_group(Group& group, DistBackend backend) {
  if (backend == DistBackend::nccl) group.shutdown();
}
#else
[[noreturn]] c10::intrusive_ptr<Group> make_nccl(const c10::intrusive_ptr<c10d::Store>&,
                                                 const World&, const DistributedConfig&,
                                                 const torch::Device&) {
  // choose_backend() refuses nccl in such a build, before any group is made.
  TORCH_CHECK(false, "make_nccl: expected a build with NCCL, got one without");
}
void close_group(Group&, DistBackend) {}
#endif

/// std::terminate() while a process group exists: Gloo's and the store's own threads can throw
/// when a peer vanishes mid-message (an uncaught exception there would abort with SIGABRT and no
/// word on why). It ends the process as a PeerError would: the error line, exit code 3. The
/// last checkpoint is complete either way (checkpoints are written atomically).
[[noreturn]] void peer_terminate() {
  std::string what = "no exception";
  if (const auto current = std::current_exception()) {
    try {
      std::rethrow_exception(current);
    } catch (const c10::Error& e) {
      what = first_line(e.what_without_backtrace());
    } catch (const std::exception& e) {
      what = first_line(e.what());
    } catch (...) {
      what = "an unknown exception";
    }
  }
  std::fprintf(stderr,
               "error: %sa thread of the process group failed: %s. Another process has probably "
               "stopped (its own error line names the cause)\n",
               process_label().c_str(), what.c_str());
  std::fflush(stderr);
  std::_Exit(static_cast<int>(ExitCode::peer_failure));
}

class C10dParallel final : public Parallel {
 public:
  C10dParallel(const World& world, const DistributedConfig& config, DistBackend backend,
               const torch::Device& device)
      : world_(world),
        config_(config),
        backend_(backend),
        collective_device_(backend == DistBackend::nccl ? device : torch::Device(torch::kCPU)) {
    std::set_terminate(peer_terminate);
    connect(device);
  }
  /// After a failure the group and the store are left to the operating system: tearing down a
  /// Gloo context whose peer is gone can block or abort, and the process is about to exit.
  ~C10dParallel() override {
    if (failed_) {
      (void)group_.release();
      (void)store_.release();
      return;
    }
    if (group_) close_group(*group_, backend_);
  }
  C10dParallel(const C10dParallel&) = delete;
  C10dParallel& operator=(const C10dParallel&) = delete;

  int rank() const override { return world_.rank; }
  int world_size() const override { return world_.world_size; }

  void check_same(const std::vector<Fingerprint>& fingerprints) override;
  void align(Recommender& model, torch::optim::Optimizer& optimizer) override;
  nlohmann::json describe() const override;
  nlohmann::json statistics() const override {
    return {{"sync_steps", sync_steps_}, {"sync_seconds", sync_seconds_}};
  }
  StepTotals sync(Recommender& model, const StepTotals& local) override;

 private:
  struct Bucket {
    std::vector<std::size_t> params;  ///< indices into params_
    std::int64_t elements = 0;        ///< gradient elements (without the tail)
  };
  /// The sparse gradients on their way: this process's rows (weighted, coalesced), every
  /// process's row counts, then every process's rows (allgather outputs, one per table).
  struct SparseExchange {
    std::vector<torch::Tensor> rows;
    std::vector<std::vector<at::Tensor>> counts{1};  ///< [tables] per process, on their way
    WorkPtr counting;
    std::vector<std::vector<std::int64_t>> row_counts;           ///< [table][process], once arrived
    std::vector<std::vector<std::vector<at::Tensor>>> gathered;  ///< [padded, 2 + dim] each
  };

  void connect(const torch::Device& device);
  c10::intrusive_ptr<c10d::Store> make_store() const;
  /// Runs `f` (a c10d call); its failures become a PeerError naming the rank and `operation`.
  template <typename F>
  decltype(auto) guarded(const std::string& operation, F&& f) const;
  void plan(Recommender& model);
  void broadcast_from_rank0(Recommender& model);
  std::vector<torch::Tensor> dense_buckets(const StepTotals& local) const;
  /// Coalesces this process's sparse gradients (times `weight`) and starts gathering every
  /// process's row counts.
  SparseExchange start_sparse(double weight);
  /// Waits for the counts, then starts gathering every process's rows, padded to the largest
  /// count (NCCL gathers equal sizes only); appends that work.
  void gather_sparse(SparseExchange& x, std::vector<WorkPtr>& work);
  /// Sparse table `j`'s gradient summed over the processes, times `scale` (after the gathers).
  torch::Tensor sum_sparse(std::size_t j, const SparseExchange& x, double scale) const;

  World world_;
  DistributedConfig config_;
  DistBackend backend_;
  torch::Device collective_device_;  ///< where the checks and sparse rows travel from
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<Group> group_;
  std::vector<torch::Tensor> params_;  ///< the model's parameters, in its order
  std::vector<std::string> names_;
  std::vector<Bucket> buckets_;
  std::vector<std::size_t> sparse_;  ///< parameters with sparse gradients (embedding tables)
  std::int64_t sync_steps_ = 0;
  double sync_seconds_ = 0.0;
  mutable bool failed_ = false;  ///< a collective failed (see the destructor)
};

template <typename F>
decltype(auto) C10dParallel::guarded(const std::string& operation, F&& f) const {
  const auto fail = [&](const std::string& what) {
    failed_ = true;
    return PeerError(fmt::format(
        "{} failed: {}. Another process has probably stopped (its own error line names the "
        "cause) or hung past train.distributed.timeout_s ({} s)",
        operation, first_line(what), config_.timeout_s));
  };
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw fail(e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw fail(e.what());
  }
}

c10::intrusive_ptr<c10d::Store> C10dParallel::make_store() const {
  const auto timeout = timeout_of(config_);
  if (config_.init.rfind("file://", 0) == 0) {
    auto store = c10::make_intrusive<c10d::FileStore>(config_.init.substr(7), world_.world_size);
    store->setTimeout(timeout);
    return store;
  }
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(world_.master_port);
  options.timeout = timeout;
  if (world_.agent_store) {
    // torchrun's agent serves the store; each attempt of an elastic job has its own keys.
    options.isServer = false;
    options.waitWorkers = false;
    auto store = c10::make_intrusive<c10d::TCPStore>(world_.master_addr, options);
    return c10::make_intrusive<c10d::PrefixStore>(
        fmt::format("/worker/attempt_{}", world_.restart_count), store);
  }
  options.isServer = world_.rank == 0;
  options.numWorkers = static_cast<std::size_t>(world_.world_size);
  options.waitWorkers = true;
  return c10::make_intrusive<c10d::TCPStore>(world_.master_addr, options);
}

#if ATTNREC_HAS_NCCL
/// This process's GPU as NCCL sees it: the host and the GPU's UUID (CUDA_VISIBLE_DEVICES may
/// number the same GPU differently in each process).
std::string gpu_identity(const torch::Device& device) {
  const auto* properties = at::cuda::getDeviceProperties(device.index());
  std::string uuid;
  for (const char byte : properties->uuid.bytes) {
    uuid += fmt::format("{:02x}", static_cast<unsigned char>(byte));
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return fmt::format("GPU-{} of host {}", uuid, host);
}

/// NCCL refuses two processes on one GPU with "invalid usage" at the rendezvous, which names
/// neither; this check does, on every rank, before the NCCL group is built.
void check_one_gpu_per_process(c10d::Store& store, const World& world,
                               const torch::Device& device) {
  const std::string mine = gpu_identity(device);
  store.set(fmt::format("attnrec/gpu/{}", world.rank),
            std::vector<std::uint8_t>(mine.begin(), mine.end()));
  std::vector<std::string> identities;
  for (int r = 0; r < world.world_size; ++r) {
    const auto bytes = store.get(fmt::format("attnrec/gpu/{}", r));
    identities.emplace_back(bytes.begin(), bytes.end());
  }
  if (const auto shared = find_shared_gpu(identities)) {
    throw ConfigError(fmt::format(
        "/train/device: ranks {} and {} both train on {} ({} here); NCCL allows one process per "
        "GPU: start at most one process per GPU on each host (\"cuda\" means cuda:LOCAL_RANK), "
        "give each process its own GPU (train.device = cuda:N, or CUDA_VISIBLE_DEVICES), or set "
        "train.distributed.backend to \"gloo\"",
        shared->first, shared->second, identities[static_cast<std::size_t>(shared->first)],
        device.str()));
  }
}
#endif

void C10dParallel::connect(const torch::Device& device) {
  const std::string where = config_.init == "env://"
                                ? fmt::format("{}:{}", world_.master_addr, world_.master_port)
                                : config_.init;
  spdlog::info("rank {} of {} ({}): rendezvous at {}, {} on {}, timeout {} s", world_.rank,
               world_.world_size, world_.source, where, name_of(backend_), device.str(),
               config_.timeout_s);
  // Every rank must arrive: with a missing one the store or the group times out.
  const auto rendezvous = [&](const std::string& part) {
    return fmt::format(
        "the rendezvous at {} ({}; every rank must start with the same MASTER_ADDR, MASTER_PORT "
        "and WORLD_SIZE, and rank 0 must run)",
        where, part);
  };
  store_ = guarded(rendezvous("store"), [&] { return make_store(); });
  const bool nccl = backend_ == DistBackend::nccl;
#if ATTNREC_HAS_NCCL
  if (nccl) {
    guarded(rendezvous("one GPU per process check"), [&] {
      check_one_gpu_per_process(*store_, world_, device);
      return 0;
    });
  }
#endif
  group_ = guarded(rendezvous(nccl ? "NCCL process group" : "Gloo process group"), [&] {
    return nccl ? make_nccl(store_, world_, config_, device) : make_gloo(store_, world_, config_);
  });
}

void C10dParallel::check_same(const std::vector<Fingerprint>& fingerprints) {
  TORCH_CHECK(static_cast<std::int64_t>(fingerprints.size()) <= kFingerprintSlots,
              "fingerprints: expected at most ", kFingerprintSlots, ", got ", fingerprints.size());
  auto mine = torch::zeros({kFingerprintSlots}, torch::kInt64);
  for (std::size_t i = 0; i < fingerprints.size(); ++i) {
    const std::uint64_t value = digest_of(fingerprints[i].first) ^ fingerprints[i].second;
    std::int64_t stored = 0;
    std::memcpy(&stored, &value, sizeof stored);
    mine[static_cast<std::int64_t>(i)] = stored;
  }
  mine = mine.to(collective_device_);
  std::vector<std::vector<at::Tensor>> all(1);
  for (int r = 0; r < world_.world_size; ++r) all[0].push_back(torch::empty_like(mine));
  std::vector<at::Tensor> input{mine};
  guarded("comparing the processes' config and data", [&] {
    group_->allgather(all, input)->wait();
    for (auto& t : all[0]) t = t.cpu();
  });
  for (std::size_t i = 0; i < fingerprints.size(); ++i) {
    std::vector<int> differ;
    for (int r = 1; r < world_.world_size; ++r) {
      if (!all[0][r][static_cast<std::int64_t>(i)].equal(all[0][0][static_cast<std::int64_t>(i)])) {
        differ.push_back(r);
      }
    }
    if (differ.empty()) continue;
    throw ConfigError(fmt::format(
        "the {} of rank(s) {} differs from rank 0's; every process of a run must start the "
        "same attnrec build with the same config, --set options and data files",
        fingerprints[i].first, fmt::join(differ, ", ")));
  }
}

void C10dParallel::plan(Recommender& model) {
  std::unordered_set<const void*> sparse_tables;
  for (const auto& module : model->modules(/*include_self=*/true)) {
    if (const auto* embedding = module->as<torch::nn::Embedding>()) {
      if (embedding->options.sparse())
        sparse_tables.insert(embedding->weight.unsafeGetTensorImpl());
    }
  }
  const auto bucket_elements = config_.bucket_mb * (std::int64_t{1} << 20) / 4;
  for (const auto& named : model->named_parameters()) {
    const std::size_t index = params_.size();
    params_.push_back(named.value());
    names_.push_back(named.key());
    if (sparse_tables.count(named.value().unsafeGetTensorImpl()) != 0) {
      sparse_.push_back(index);
      continue;
    }
    if (buckets_.empty() || buckets_.back().elements + named.value().numel() > bucket_elements) {
      buckets_.emplace_back();
    }
    buckets_.back().params.push_back(index);
    buckets_.back().elements += named.value().numel();
  }
  if (buckets_.empty()) buckets_.emplace_back();  // the tail travels even without dense gradients
}

void C10dParallel::broadcast_from_rank0(Recommender& model) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> tensors;
  for (const auto& p : model->parameters()) tensors.push_back(p.detach());
  for (const auto& b : model->buffers()) tensors.push_back(b.detach());
  c10d::BroadcastOptions options;
  options.rootRank = 0;
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t};
    guarded("broadcasting the model from rank 0", [&] { group_->broadcast(one, options)->wait(); });
  }
}

void C10dParallel::align(Recommender& model, torch::optim::Optimizer& optimizer) {
  plan(model);
  broadcast_from_rank0(model);
  check_same({{"model parameters after the broadcast", digest_of(weights_sha256(model))},
              {"optimizer state", digest_of(optimizer_sha256(model, optimizer))}});
  spdlog::info(
      "data-parallel over {} processes ({}): {} dense gradient bucket(s) of up to {} MiB, {} "
      "sparse table(s)",
      world_.world_size, name_of(backend_), buckets_.size(), config_.bucket_mb, sparse_.size());
}

nlohmann::json C10dParallel::describe() const {
  nlohmann::json plan = nlohmann::json::array();
  for (const auto& b : buckets_) plan.push_back(b.elements);
  nlohmann::json sparse = nlohmann::json::array();
  for (const auto i : sparse_) sparse.push_back(names_[i]);
  return {{"world_size", world_.world_size},
          {"backend", name_of(backend_)},
          {"bucket_mb", config_.bucket_mb},
          {"bucket_plan", plan},
          {"sparse_parameters", sparse}};
}

std::vector<torch::Tensor> C10dParallel::dense_buckets(const StepTotals& local) const {
  std::vector<torch::Tensor> flats;
  const auto options = torch::TensorOptions().dtype(torch::kFloat32);
  for (std::size_t k = 0; k < buckets_.size(); ++k) {
    const bool last = k + 1 == buckets_.size();
    auto flat = torch::empty({buckets_[k].elements + (last ? kTail : 0)},
                             options.device(params_.empty() ? torch::kCPU : params_[0].device()));
    std::int64_t offset = 0;
    for (const auto i : buckets_[k].params) {
      const auto n = params_[i].numel();
      const auto& grad = params_[i].grad();
      if (grad.defined()) {
        flat.narrow(0, offset, n).copy_(grad.reshape({-1}));
      } else {
        flat.narrow(0, offset, n).zero_();
      }
      offset += n;
    }
    // Each process's gradient is of its mean loss: weighted by its terms, the sum over
    // processes divided by all the terms is the gradient of the whole batch's mean.
    flat.narrow(0, 0, offset).mul_(local.cases);
    if (last) {
      const double tail[kTail] = {local.cases,   local.loss_sum, local.nonfinite,
                                  local.samples, local.sigint,   local.sigterm};
      for (std::int64_t j = 0; j < kTail; ++j) flat[offset + j] = tail[j];
    }
    flats.push_back(flat);
  }
  return flats;
}

C10dParallel::SparseExchange C10dParallel::start_sparse(double weight) {
  SparseExchange x;
  if (sparse_.empty()) return x;
  auto counts = torch::empty({static_cast<std::int64_t>(sparse_.size())}, torch::kInt64);
  for (std::size_t j = 0; j < sparse_.size(); ++j) {
    const auto& param = params_[sparse_[j]];
    auto grad = param.grad();
    if (!grad.defined()) {
      grad = torch::sparse_coo_tensor(
          torch::empty({1, 0}, torch::TensorOptions().dtype(torch::kInt64).device(param.device())),
          torch::empty({0, param.size(1)}, param.options()), param.sizes());
    }
    x.rows.push_back(grad.coalesce() * weight);
    TORCH_CHECK(x.rows.back().scalar_type() == torch::kFloat32, "sparse gradient of ",
                names_[sparse_[j]], ": expected float32, got ", x.rows.back().scalar_type());
    counts[static_cast<std::int64_t>(j)] = x.rows.back()._nnz();
  }
  std::vector<at::Tensor> mine{counts.to(collective_device_)};
  for (int r = 0; r < world_.world_size; ++r) x.counts[0].push_back(torch::empty_like(mine[0]));
  x.counting = group_->allgather(x.counts, mine);
  return x;
}

void C10dParallel::gather_sparse(SparseExchange& x, std::vector<WorkPtr>& work) {
  if (sparse_.empty()) return;
  x.counting->wait();
  x.row_counts.assign(sparse_.size(), {});
  for (const auto& c : x.counts[0]) {
    const auto host = c.cpu();
    for (std::size_t j = 0; j < sparse_.size(); ++j) {
      x.row_counts[j].push_back(host[static_cast<std::int64_t>(j)].item<std::int64_t>());
    }
  }
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(collective_device_);
  for (std::size_t j = 0; j < sparse_.size(); ++j) {
    // At least one row: never an empty collective.
    const std::int64_t padded = std::max<std::int64_t>(
        1, *std::max_element(x.row_counts[j].begin(), x.row_counts[j].end()));
    // One float32 row per gradient row: the int64 index's 8 bytes in columns 0-1, the values
    // after them. Collectives copy bytes, so the index travels exactly.
    const auto& own = x.rows[j];
    const auto n = own._nnz();
    auto packed = torch::zeros({padded, 2 + own.size(1)}, options);
    packed.narrow(0, 0, n).narrow(1, 0, 2).copy_(
        own.indices().reshape({n}).contiguous().view(torch::kFloat32).view({n, 2}));
    packed.narrow(0, 0, n).narrow(1, 2, own.size(1)).copy_(own.values());
    x.gathered.emplace_back(1);
    for (int r = 0; r < world_.world_size; ++r)
      x.gathered.back()[0].push_back(torch::empty_like(packed));
    std::vector<at::Tensor> send{packed};
    work.push_back(group_->allgather(x.gathered.back(), send));
  }
}

torch::Tensor C10dParallel::sum_sparse(std::size_t j, const SparseExchange& x, double scale) const {
  const auto& param = params_[sparse_[j]];
  std::vector<torch::Tensor> indices, values;
  for (int r = 0; r < world_.world_size; ++r) {
    const auto count = x.row_counts[j][static_cast<std::size_t>(r)];
    const auto rows = x.gathered[j][0][static_cast<std::size_t>(r)].narrow(0, 0, count);
    indices.push_back(rows.narrow(1, 0, 2).contiguous().view(torch::kInt64).view({1, count}));
    values.push_back(rows.narrow(1, 2, rows.size(1) - 2));
  }
  return (torch::sparse_coo_tensor(torch::cat(indices, 1).to(param.device()),
                                   torch::cat(values, 0).to(param.device()), param.sizes()) *
          scale)
      .coalesce();
}

StepTotals C10dParallel::sync(Recommender&, const StepTotals& local) {
  const auto started = std::chrono::steady_clock::now();
  auto flats = dense_buckets(local);
  std::vector<WorkPtr> work;
  SparseExchange sparse;
  guarded("the gradient allreduce", [&] {
    // The row counts travel first, beside the dense buckets; the rows follow.
    sparse = start_sparse(local.cases);
    for (auto& flat : flats) {
      std::vector<at::Tensor> one{flat};
      work.push_back(group_->allreduce(one));
    }
    gather_sparse(sparse, work);
    for (auto& w : work) w->wait();
  });
  const auto& last = flats.back();
  const auto tail_at = buckets_.back().elements;
  StepTotals total;
  double* fields[kTail] = {&total.cases,   &total.loss_sum, &total.nonfinite,
                           &total.samples, &total.sigint,   &total.sigterm};
  // One copy to the host (on CUDA, one synchronisation instead of one per value).
  const auto tail = last.narrow(0, tail_at, kTail).to(torch::kCPU, torch::kFloat64);
  for (std::int64_t j = 0; j < kTail; ++j) *fields[j] = tail[j].item<double>();
  const double scale = total.cases > 0 ? 1.0 / total.cases : 0.0;
  for (std::size_t k = 0; k < buckets_.size(); ++k) {
    flats[k].mul_(scale);
    std::int64_t offset = 0;
    for (const auto i : buckets_[k].params) {
      const auto n = params_[i].numel();
      params_[i].mutable_grad() = flats[k].narrow(0, offset, n).view(params_[i].sizes());
      offset += n;
    }
  }
  for (std::size_t j = 0; j < sparse_.size(); ++j) {
    params_[sparse_[j]].mutable_grad() = sum_sparse(j, sparse, scale);
  }
  ++sync_steps_;
  sync_seconds_ +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return total;
}

}  // namespace

bool nccl_built() { return ATTNREC_HAS_NCCL != 0; }

std::string describe_process_groups() {
#if ATTNREC_HAS_NCCL
  return fmt::format("process groups: gloo, nccl (NCCL headers {}.{}.{})", NCCL_MAJOR, NCCL_MINOR,
                     NCCL_PATCH);
#else
  return "process groups: gloo";
#endif
}

std::optional<std::pair<int, int>> find_shared_gpu(const std::vector<std::string>& identities) {
  for (std::size_t a = 0; a < identities.size(); ++a) {
    for (std::size_t b = a + 1; b < identities.size(); ++b) {
      if (identities[a] == identities[b]) {
        return std::make_pair(static_cast<int>(a), static_cast<int>(b));
      }
    }
  }
  return std::nullopt;
}

DistBackend choose_backend(DistBackend requested, const torch::Device& device, bool has_nccl) {
  switch (requested) {
    case DistBackend::automatic:
      return device.is_cuda() && has_nccl ? DistBackend::nccl : DistBackend::gloo;
    case DistBackend::gloo:
      return DistBackend::gloo;
    case DistBackend::nccl:
      break;
  }
  if (!has_nccl) {
    throw ConfigError(
        "/train/distributed/backend: \"nccl\" but this build of attnrec has no NCCL (`attnrec "
        "--version` lists its process groups); build against a CUDA LibTorch with NCCL "
        "(scripts/setup.sh --libtorch pypi) or use \"gloo\"");
  }
  if (!device.is_cuda()) {
    throw ConfigError(fmt::format(
        "/train/distributed/backend: \"nccl\" needs CUDA devices, but this process trains on {}; "
        "set train.device to cuda (one GPU per process) or use \"gloo\"",
        device.str()));
  }
  return DistBackend::nccl;
}

std::unique_ptr<Parallel> connect_data_parallel(const World& world, const DistributedConfig& config,
                                                const torch::Device& device) {
  const DistBackend backend = choose_backend(config.backend, device, nccl_built());
  return std::make_unique<C10dParallel>(world, config, backend, device);
}

}  // namespace attnrec
