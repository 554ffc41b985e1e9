#pragma once
// Data that CLI tests prepare with the real binary (needs Catch2: failures are REQUIREs).

#include <catch2/catch.hpp>
#include <string>

#include "support.hpp"

namespace attnrec::test {

/// A small generated log prepared by `attnrec preprocess` (10 frozen ranking negatives per
/// validation and test positive) in DIR/prepared; returns that directory.
inline std::string prepared_log(const TempDir& dir) {
  const auto log = dir.file("ratings.dat");
  REQUIRE(run_cli_env("OMP_WAIT_POLICY=PASSIVE",
                      "--log-level warn generate --log '" + log +
                          "' --log-users 60 --log-items 80 --max-events 30 --seed 3")
              .code == 0);
  const auto data = dir.file("prepared");
  const auto pre =
      run_cli_env("OMP_WAIT_POLICY=PASSIVE", "--log-level warn preprocess -i '" + log + "' -o '" +
                                                 data + "' --min-rating 1 --ranking-negatives 10");
  INFO(pre.err);
  REQUIRE(pre.code == 0);
  return data;
}

}  // namespace attnrec::test
