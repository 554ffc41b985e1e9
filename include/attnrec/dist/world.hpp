#pragma once
/// \file Who this process is among the processes of a job, read from the launcher's
/// environment: torchrun and PyTorch's env:// convention (RANK, WORLD_SIZE, LOCAL_RANK,
/// MASTER_ADDR, MASTER_PORT), then Slurm (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID), then
/// Open MPI (OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK). No c10d here: this is plain text.

#include <functional>
#include <optional>
#include <string>

namespace attnrec {

/// This process's place in the job. A world of one is today's single-process path.
struct World {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  /// Processes on this host (LOCAL_WORLD_SIZE, SLURM_NTASKS_PER_NODE,
  /// OMPI_COMM_WORLD_LOCAL_SIZE; the world size when the launcher does not say): they share
  /// its cores.
  int local_world_size = 1;
  std::string master_addr;                ///< host of rank 0's store (empty for a world of one)
  int master_port = 0;                    ///< its port (0 for a world of one)
  std::string source = "single process";  ///< which launcher's variables were read
  bool distributed() const { return world_size > 1; }
};

/// Reads one environment variable; nullopt when it is unset.
using Environment = std::function<std::optional<std::string>(const std::string&)>;

/// The process's own environment.
Environment process_environment();

/// Largest world accepted (a typo such as WORLD_SIZE=20000000 is an error, not a wait).
constexpr int kMaxWorldSize = 65536;

/// The world the launcher describes. Variables of the first convention present are read
/// (env://, then Slurm, then Open MPI); none of them, or a world size of 1, is a world of one.
/// Inconsistent or malformed values (a rank without a world size, a rank outside the world, a
/// port outside 1..65535, MASTER_ADDR missing in a world of several) are a ConfigError naming
/// the variable, its value and what to do.
World discover_world(const Environment& env = process_environment());

/// For commands that run in one process (`what`, e.g. "attnrec evaluate"): a world of several
/// is refused with a ConfigError saying so, instead of several processes each doing the work.
void require_single_process(const World& world, const std::string& what);

}  // namespace attnrec
