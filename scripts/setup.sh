#!/usr/bin/env bash
# Installs the Debian packages attnrec needs (a no-op when they are all present), then
# configures and builds everything in build/ (Release, -Wall -Wextra).
set -euo pipefail
cd "$(dirname "$0")/.."

# libopenblas0-pthread is listed explicitly: libtorch only *recommends* a fast BLAS, and with
# --no-install-recommends it would fall back to reference BLAS (about 6x slower training).
packages=(cmake ninja-build g++ libtorch-dev libopenblas0-pthread libfmt-dev libspdlog-dev
          libcli11-dev nlohmann-json3-dev catch2 libssl-dev clang-format)
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

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "${ATTNREC_BUILD_JOBS:-$(nproc)}"
