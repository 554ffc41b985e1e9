#define CATCH_CONFIG_RUNNER
#include <unistd.h>
#include <catch2/catch.hpp>
#include <cstdlib>

#include "attnrec/util/libstdcxx.hpp"

int main(int argc, char* argv[]) {
  // As the attnrec binary does: std::filesystem must bind to libstdc++, not LibTorch's copies.
  if (attnrec::prefer_system_libstdcxx()) ::execv("/proc/self/exe", argv);
  // The binaries the CLI tests start inherit this, so their compute commands skip the one-time
  // re-execution that sets it (about a second each); the test of that re-execution unsets it.
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
  return Catch::Session().run(argc, argv);
}
