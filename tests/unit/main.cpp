#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdlib>

int main(int argc, char* argv[]) {
  // The binaries the CLI tests start inherit this, so their compute commands skip the one-time
  // re-execution that sets it (about a second each); the test of that re-execution unsets it.
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
  return Catch::Session().run(argc, argv);
}
