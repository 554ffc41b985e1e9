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

[[noreturn]] void bad_hostlist(const std::string& variable, const std::string& list,
                               const std::string& why) {
  throw ConfigError(fmt::format(
      "environment (Slurm): {}={}: {}; expected a Slurm host list such as node[01-04,07],gpu1 "
      "(or set MASTER_ADDR to the host of rank 0)",
      variable, quote_for_message(list), why));
}

/// `text` split at the commas outside brackets.
std::vector<std::string> split_top_level(const std::string& text) {
  std::vector<std::string> parts(1);
  int depth = 0;
  for (const char c : text) {
    depth += c == '[' ? 1 : c == ']' ? -1 : 0;
    if (c == ',' && depth == 0) {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  return parts;
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

/// The numbers of one bracket group ("01-03,7"), as text with their padding.
std::vector<std::string> expand_ranges(const std::string& body, const std::string& variable,
                                       const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= body.size()) {
    const auto comma = body.find(',', start);
    const std::string part =
        body.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto dash = part.find('-');
    const std::string lo = part.substr(0, dash);
    const std::string hi = dash == std::string::npos ? lo : part.substr(dash + 1);
    if (!all_digits(lo) || !all_digits(hi) || lo.size() > 9 || hi.size() > 9) {
      bad_hostlist(variable, list, "\"" + part + "\" is not a number or a range a-b");
    }
    const long a = std::stol(lo), b = std::stol(hi);
    if (b < a) bad_hostlist(variable, list, "the range \"" + part + "\" runs backwards");
    if (b - a + static_cast<long>(out.size()) >= kMaxWorldSize) {
      bad_hostlist(variable, list, "more hosts than a world may have");
    }
    for (long n = a; n <= b; ++n) out.push_back(fmt::format("{:0{}}", n, lo.size()));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

/// One name of a host list, its bracket groups expanded.
std::vector<std::string> expand_name(const std::string& name, const std::string& variable,
                                     const std::string& list) {
  const auto open = name.find('[');
  if (open == std::string::npos) {
    if (name.find(']') != std::string::npos) bad_hostlist(variable, list, "a ']' without '['");
    return {name};
  }
  const auto close = name.find(']', open);
  if (close == std::string::npos) bad_hostlist(variable, list, "a '[' without ']'");
  const auto rest = expand_name(name.substr(close + 1), variable, list);
  std::vector<std::string> out;
  for (const auto& number :
       expand_ranges(name.substr(open + 1, close - open - 1), variable, list)) {
    for (const auto& tail : rest) out.push_back(name.substr(0, open) + number + tail);
  }
  return out;
}

}  // namespace

std::vector<std::string> expand_hostlist(const std::string& list, const std::string& variable) {
  std::vector<std::string> hosts;
  for (const auto& name : split_top_level(list)) {
    if (name.empty()) bad_hostlist(variable, list, "an empty host name");
    for (auto& host : expand_name(name, variable, list)) hosts.push_back(std::move(host));
  }
  return hosts;
}

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
  if (found == &kConventions[0]) {
    const auto agent = env("TORCHELASTIC_USE_AGENT_STORE");
    world.agent_store = agent && (*agent == "True" || *agent == "true" || *agent == "1");
    if (const auto restarts = env("TORCHELASTIC_RESTART_COUNT")) {
      world.restart_count =
          parse_in_range("TORCHELASTIC_RESTART_COUNT", *restarts, 0, 1 << 30, source);
    }
  }
  auto addr = env("MASTER_ADDR");
  if ((!addr || addr->empty()) && found == &kConventions[1]) {
    // Slurm: rank 0 runs on the first host of the job's allocation.
    for (const char* variable : {"SLURM_JOB_NODELIST", "SLURM_NODELIST"}) {
      if (const auto list = env(variable)) {
        addr = expand_hostlist(*list, variable).front();
        break;
      }
    }
  }
  if (!addr || addr->empty()) {
    throw ConfigError(fmt::format(
        "{}: a world of {} processes needs MASTER_ADDR, the host of rank 0 (torchrun sets it; "
        "under Slurm it defaults to the first host of SLURM_JOB_NODELIST; under mpirun export "
        "it, e.g. mpirun -x MASTER_ADDR=$(hostname))",
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
