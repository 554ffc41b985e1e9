#include "attnrec/dist/world.hpp"

#include <fmt/format.h>
#include <cerrno>
#include <cstdlib>

#include "attnrec/util/device_spec.hpp"
#include "attnrec/util/error.hpp"

namespace attnrec {

namespace {

/// The variables of one launcher's convention.
struct Convention {
  const char* name;
  const char* rank;
  const char* size;
  const char* local_rank;
  const char* local_size;
};

constexpr Convention kConventions[] = {
    {"env:// (torchrun)", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"},
    {"Slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"},
    {"Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
     "OMPI_COMM_WORLD_LOCAL_SIZE"},
};

/// `text` as an integer in [lo, hi], or a ConfigError naming the variable.
int parse_in_range(const std::string& variable, const std::string& text, long lo, long hi,
                   const std::string& source) {
  errno = 0;
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || value < lo ||
      value > hi) {
    throw ConfigError(
        fmt::format("{}: {}={}: expected an integer from {} to {}; check the "
                    "launcher's settings",
                    source, variable, quote_for_message(text), lo, hi));
  }
  return static_cast<int>(value);
}

}  // namespace

Environment process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

World discover_world(const Environment& env) {
  World world;
  const Convention* found = nullptr;
  for (const auto& c : kConventions) {
    if (env(c.rank) || env(c.size)) {
      found = &c;
      break;
    }
  }
  if (found == nullptr) return world;
  const std::string source = fmt::format("environment ({})", found->name);
  const auto rank = env(found->rank);
  const auto size = env(found->size);
  if (!rank || !size) {
    throw ConfigError(fmt::format(
        "{}: {} is set but {} is not; a launcher sets both (unset the one left over, or set "
        "the other)",
        source, rank ? found->rank : found->size, rank ? found->size : found->rank));
  }
  world.source = found->name;
  world.world_size = parse_in_range(found->size, *size, 1, kMaxWorldSize, source);
  world.rank = parse_in_range(found->rank, *rank, 0, world.world_size - 1, source);
  const auto local = env(found->local_rank);
  world.local_rank =
      local ? parse_in_range(found->local_rank, *local, 0, world.world_size - 1, source) : 0;
  const auto local_size = env(found->local_size);
  world.local_world_size =
      local_size ? parse_in_range(found->local_size, *local_size, 1, world.world_size, source)
                 : world.world_size;
  if (!world.distributed()) return world;
  const auto addr = env("MASTER_ADDR");
  if (!addr || addr->empty()) {
    throw ConfigError(fmt::format(
        "{}: a world of {} processes needs MASTER_ADDR, the host of rank 0 (torchrun sets it; "
        "under Slurm or mpirun export it, e.g. MASTER_ADDR=$(hostname) on the first host)",
        source, world.world_size));
  }
  const auto port = env("MASTER_PORT");
  if (!port) {
    throw ConfigError(fmt::format(
        "{}: a world of {} processes needs MASTER_PORT, a free TCP port on the host of rank 0 "
        "(torchrun sets it; e.g. MASTER_PORT=29500)",
        source, world.world_size));
  }
  world.master_addr = *addr;
  world.master_port = parse_in_range("MASTER_PORT", *port, 1, 65535, source);
  return world;
}

void require_single_process(const World& world, const std::string& what) {
  if (!world.distributed()) return;
  throw ConfigError(fmt::format(
      "environment ({}): this process is rank {} of {}, but {} runs in one process; start a "
      "single process (without torchrun, srun or mpirun, or with one task), or unset the "
      "launcher's variables",
      world.source, world.rank, world.world_size, what));
}

}  // namespace attnrec
