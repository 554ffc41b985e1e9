#!/usr/bin/env bash
# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer: the library, CLI and
# tests built with clang and -fsanitize=address,undefined -fno-sanitize-recover=all in
# build-sanitize/, then every test run (the CLI tests run the sanitized binary). Any report
# fails the test that caused it.
#
#   bash scripts/sanitize.sh [CTEST_ARGS...]     (e.g. -R explain; first build ~25 min on 2 cores)
#
# LibTorch itself is not instrumented. Leak suppressions, each with its reason: tests/lsan.supp
# (UndefinedBehaviorSanitizer has none).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-sanitize
command -v clang++ > /dev/null || { echo "error: clang++ not found (apt-get install clang)" >&2; exit 2; }
if [[ ! -f $build/build.ninja ]]; then
  CXX=clang++ cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DATTNREC_SANITIZE=address,undefined > /dev/null
fi
start=$(date +%s)
cmake --build $build -j "$(nproc)"
built=$(date +%s)
supp=$PWD/tests/lsan.supp
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export LSAN_OPTIONS=suppressions=$supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
set +e
(cd $build && ctest -j "$(nproc)" --output-on-failure --timeout 1800 "$@")
status=$?
set -e
echo "sanitized build $((built - start)) s, suite $(( $(date +%s) - built )) s, exit $status"
exit $status
