#pragma once
/// \file Who this process is among the processes of a job, read from the launcher's
/// environment: torchrun and PyTorch's env:// convention (RANK, WORLD_SIZE, LOCAL_RANK,
/// MASTER_ADDR, MASTER_PORT), then Slurm (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID), then
/// Open MPI (OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK). No c10d here: this is plain text.

#include <functional>
#include <optional>
#include <string>
#include <vector>

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
  /// torchrun's agent serves the store at MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True):
  /// every rank connects as a client, under the prefix "/worker/attempt_<restart_count>", as
  /// PyTorch's env:// does. Otherwise rank 0 serves it.
  bool agent_store = false;
  int restart_count = 0;  ///< TORCHELASTIC_RESTART_COUNT: 0, then 1, 2, ... after restarts
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

/// The host names of a Slurm host list (SLURM_JOB_NODELIST), in order: "node[01-03,07],gpu5"
/// -> node01, node02, node03, node07, gpu5. Ranges keep the zero padding of their first bound;
/// several bracket groups in one name expand as a product ("r[1-2]n[1-2]" -> r1n1 r1n2 r2n1
/// r2n2). Malformed lists are a ConfigError naming `variable`.
std::vector<std::string> expand_hostlist(const std::string& list,
                                         const std::string& variable = "SLURM_JOB_NODELIST");

/// For commands that run in one process (`what`, e.g. "attnrec evaluate"): a world of several
/// is refused with a ConfigError saying so, instead of several processes each doing the work.
void require_single_process(const World& world, const std::string& what);

}  // namespace attnrec
