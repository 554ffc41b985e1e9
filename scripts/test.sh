#!/usr/bin/env bash
# Sets up, builds, checks the formatting and runs the whole test suite (unit, integration and
# CLI tests) against both supported LibTorch builds: Debian's 1.13 (build/) and PyPI's 2.11
# with CUDA (build-pypi/; CPU tests here, CUDA-tagged tests skip without a GPU).
# ATTNREC_TEST_LIBTORCH="debian" (or "pypi") runs one of them only.
set -euo pipefail
cd "$(dirname "$0")/.."
checked_format=no
# The export tests run scripts/attnrec_reference.py with torch and the safetensors package.
scripts/export_venv.sh > /dev/null ||
  echo "test: .venv-export could not be created; the export tests fall back to /usr/bin/python3" >&2
# The browser (chromium) and terminal (tmux) tests: Debian packages.
scripts/test_tools.sh > /dev/null ||
  echo "test: chromium/tmux could not be installed; the browser and terminal tests skip" >&2
for libtorch in ${ATTNREC_TEST_LIBTORCH:-debian pypi}; do
  start=$SECONDS
  scripts/setup.sh --libtorch "$libtorch"
  if [ "$checked_format" = no ]; then scripts/check_format.sh; checked_format=yes; fi
  dir=build
  if [ "$libtorch" = pypi ]; then dir=build-pypi; fi
  (cd "$dir" && ctest --output-on-failure -j "${ATTNREC_TEST_JOBS:-2}")
  echo "test: LibTorch build '$libtorch' (set-up, build and tests) took $((SECONDS - start)) s"
done
