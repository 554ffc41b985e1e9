// World discovery from the launcher's environment (torchrun / env://, Slurm, Open MPI), on
// hand-made environments: what each convention yields, which wins, and every malformed case.
#include <catch2/catch.hpp>
#include <map>

#include "attnrec/dist/world.hpp"
#include "attnrec/util/error.hpp"

using namespace attnrec;
using Catch::Matchers::Contains;

namespace {

Environment fake(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const std::map<std::string, std::string> kMaster = {{"MASTER_ADDR", "10.0.0.1"},
                                                    {"MASTER_PORT", "29500"}};

std::map<std::string, std::string> with_master(std::map<std::string, std::string> vars) {
  vars.insert(kMaster.begin(), kMaster.end());
  return vars;
}

}  // namespace

TEST_CASE("world: no launcher, or a world of one, is the single-process path", "[dist][world]") {
  const auto none = discover_world(fake({}));
  CHECK_FALSE(none.distributed());
  CHECK(none.rank == 0);
  CHECK(none.world_size == 1);
  CHECK(none.source == "single process");
  // torchrun --nproc_per_node=1 sets the variables without MASTER_* being needed.
  const auto one = discover_world(fake({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"LOCAL_RANK", "0"}}));
  CHECK_FALSE(one.distributed());
  CHECK(one.source == "env:// (torchrun)");
  CHECK_NOTHROW(require_single_process(one, "attnrec evaluate"));
}

TEST_CASE("world: torchrun, Slurm and Open MPI variables, in that order", "[dist][world]") {
  const auto torchrun =
      discover_world(fake(with_master({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}})));
  CHECK(torchrun.distributed());
  CHECK(torchrun.rank == 3);
  CHECK(torchrun.world_size == 4);
  CHECK(torchrun.local_rank == 1);
  CHECK(torchrun.master_addr == "10.0.0.1");
  CHECK(torchrun.master_port == 29500);
  CHECK(torchrun.source == "env:// (torchrun)");
  const auto slurm = discover_world(
      fake(with_master({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"}})));
  CHECK(slurm.rank == 5);
  CHECK(slurm.world_size == 8);
  CHECK(slurm.local_rank == 1);
  CHECK(slurm.source == "Slurm");
  const auto mpi = discover_world(fake(with_master({{"OMPI_COMM_WORLD_RANK", "1"},
                                                    {"OMPI_COMM_WORLD_SIZE", "2"},
                                                    {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}})));
  CHECK(mpi.rank == 1);
  CHECK(mpi.world_size == 2);
  CHECK(mpi.source == "Open MPI");
  // A job started by torchrun inside a Slurm allocation: torchrun's variables win.
  const auto both = discover_world(fake(with_master(
      {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}})));
  CHECK(both.rank == 1);
  CHECK(both.source == "env:// (torchrun)");
  // No local rank: 0.
  CHECK(discover_world(fake(with_master({{"RANK", "1"}, {"WORLD_SIZE", "2"}}))).local_rank == 0);
}

TEST_CASE("world: malformed or inconsistent variables name themselves and what to do",
          "[dist][world]") {
  const auto error = [](std::map<std::string, std::string> vars) {
    try {
      discover_world(fake(std::move(vars)));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error({{"RANK", "0"}}), Contains("RANK is set but WORLD_SIZE is not"));
  CHECK_THAT(error({{"SLURM_NTASKS", "2"}}), Contains("SLURM_NTASKS is set but SLURM_PROCID"));
  CHECK_THAT(error(with_master({{"RANK", "2"}, {"WORLD_SIZE", "2"}})),
             Contains("RANK=\"2\": expected an integer from 0 to 1"));
  CHECK_THAT(error(with_master({{"RANK", "x"}, {"WORLD_SIZE", "2"}})),
             Contains("RANK=\"x\": expected an integer"));
  CHECK_THAT(error(with_master({{"RANK", "0"}, {"WORLD_SIZE", "0"}})),
             Contains("WORLD_SIZE=\"0\": expected an integer from 1 to 65536"));
  CHECK_THAT(error(with_master({{"RANK", "0"}, {"WORLD_SIZE", "99999999999999999999"}})),
             Contains("WORLD_SIZE"));
  CHECK_THAT(error(with_master({{"RANK", "0"}, {"WORLD_SIZE", "2 "}})),
             Contains("expected an integer"));
  CHECK_THAT(error(with_master({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "-1"}})),
             Contains("LOCAL_RANK=\"-1\""));
  CHECK_THAT(error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "29500"}}),
             Contains("needs MASTER_ADDR"));
  CHECK_THAT(error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}),
             Contains("needs MASTER_PORT"));
  CHECK_THAT(
      error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}}),
      Contains("MASTER_PORT=\"70000\": expected an integer from 1 to 65535"));
}

TEST_CASE("world: single-process commands refuse a world of several processes", "[dist][world]") {
  const auto world = discover_world(fake(with_master({{"RANK", "1"}, {"WORLD_SIZE", "2"}})));
  CHECK_THROWS_WITH(require_single_process(world, "attnrec evaluate"),
                    Contains("rank 1 of 2") && Contains("attnrec evaluate runs in one process") &&
                        Contains("start a single process"));
  CHECK(world.local_world_size == 2);  // not said by the launcher: all processes on one host
  const auto local = discover_world(fake(with_master(
      {{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"}})));
  CHECK(local.local_world_size == 2);
  CHECK_THROWS_WITH(discover_world(fake(with_master(
                        {{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_WORLD_SIZE", "5"}}))),
                    Contains("LOCAL_WORLD_SIZE=\"5\": expected an integer from 1 to 4"));
}

TEST_CASE("world: Slurm host lists expand like scontrol show hostnames", "[dist][world]") {
  using V = std::vector<std::string>;
  CHECK(expand_hostlist("node7") == V{"node7"});
  CHECK(expand_hostlist("node[01-04,07]") == V{"node01", "node02", "node03", "node04", "node07"});
  CHECK(expand_hostlist("a[8-11],b1,c[3]") == V{"a8", "a9", "a10", "a11", "b1", "c3"});
  CHECK(expand_hostlist("gpu[098-101]") == V{"gpu098", "gpu099", "gpu100", "gpu101"});
  CHECK(expand_hostlist("r[1-2]n[1-2]-ib") == V{"r1n1-ib", "r1n2-ib", "r2n1-ib", "r2n2-ib"});
  for (const auto& [list, why] : std::vector<std::pair<std::string, std::string>>{
           {"node[1-", "a '[' without ']'"},
           {"node1]", "a ']' without '['"},
           {"node[4-2]", "runs backwards"},
           {"node[a-b]", "is not a number or a range"},
           {"node[1,,2]", "is not a number or a range"},
           {"n1,,n2", "an empty host name"},
           {"n[0-99999999]", "more hosts than a world may have"}}) {
    INFO(list);
    CHECK_THROWS_WITH(expand_hostlist(list), Contains("SLURM_JOB_NODELIST") && Contains(why));
  }
  // Under srun without MASTER_ADDR, rank 0 is on the first host of the allocation.
  const auto w = discover_world(fake({{"SLURM_PROCID", "1"},
                                      {"SLURM_NTASKS", "4"},
                                      {"SLURM_JOB_NODELIST", "cn[003-004]"},
                                      {"MASTER_PORT", "29500"}}));
  CHECK(w.master_addr == "cn003");
  CHECK(w.source == "Slurm");
  // MASTER_ADDR, when set, wins.
  CHECK(discover_world(fake(with_master({{"SLURM_PROCID", "1"},
                                         {"SLURM_NTASKS", "4"},
                                         {"SLURM_JOB_NODELIST", "cn[003-004]"}})))
            .master_addr == "10.0.0.1");
}

TEST_CASE("world: torchrun's agent store and restart count", "[dist][world]") {
  const auto w = discover_world(fake(with_master({{"RANK", "1"},
                                                  {"WORLD_SIZE", "2"},
                                                  {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                                  {"TORCHELASTIC_RESTART_COUNT", "2"}})));
  CHECK(w.agent_store);
  CHECK(w.restart_count == 2);
  const auto manual = discover_world(fake(with_master({{"RANK", "1"}, {"WORLD_SIZE", "2"}})));
  CHECK_FALSE(manual.agent_store);
  CHECK(manual.restart_count == 0);
  CHECK_THROWS_WITH(
      discover_world(fake(
          with_master({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"TORCHELASTIC_RESTART_COUNT", "x"}}))),
      Contains("TORCHELASTIC_RESTART_COUNT"));
}
