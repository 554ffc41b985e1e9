#!/usr/bin/env bash
# Sets up, builds, checks the formatting and runs the whole test suite (unit, integration and
# CLI tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/check_format.sh
cd build
ctest --output-on-failure -j "${ATTNREC_TEST_JOBS:-2}"
