#!/usr/bin/env bash
# Installs the Debian packages attnrec needs (a no-op when they are all present), then
# configures and builds everything (Release, -Wall -Wextra) against one of two LibTorch builds:
#
#   scripts/setup.sh                    Debian's libtorch-dev 1.13 (CPU), in build/ (the default)
#   scripts/setup.sh --libtorch pypi    the LibTorch inside PyPI's torch==2.11.0 wheel (CUDA 13.0),
#                                       installed into .venv-libtorch/, in build-pypi/
#
# ATTNREC_LIBTORCH=debian|pypi does the same as the flag (the flag wins).
set -euo pipefail
cd "$(dirname "$0")/.."

libtorch="${ATTNREC_LIBTORCH:-debian}"
while (($#)); do
  case "$1" in
    --libtorch) libtorch="${2:-}"; shift 2 || shift ;;
    --libtorch=*) libtorch="${1#*=}"; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown argument '$1' (expected --libtorch debian|pypi)" >&2; exit 2 ;;
  esac
done
case "$libtorch" in
  debian|pypi) ;;
  *) echo "setup: --libtorch expects debian or pypi, got '$libtorch'" >&2; exit 2 ;;
esac

# libopenblas0-pthread is listed explicitly: libtorch only *recommends* a fast BLAS, and with
# --no-install-recommends it would fall back to reference BLAS (about 6x slower training).
packages=(cmake ninja-build g++ libtorch-dev libopenblas0-pthread libfmt-dev libspdlog-dev
          libcli11-dev nlohmann-json3-dev catch2 libssl-dev clang-format libgloo-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

jobs="${ATTNREC_BUILD_JOBS:-$(nproc)}"
if [ "$libtorch" = debian ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
  cmake --build build -j "$jobs"
else
  prefix="$(scripts/libtorch_venv.sh)"
  cmake -S . -B build-pypi -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix"
  cmake --build build-pypi -j "$jobs"
fi
