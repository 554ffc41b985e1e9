#!/usr/bin/env bash
# Downloads the Debian packages that a lent GPU machine (no network, no apt) needs besides its
# own PyTorch to build attnrec, and unpacks them into .device-deps/ (ignored by git; carried to
# the machine by the `device` tool's `carry`). Run it here, before scripts/device_check.sh.
#   scripts/fetch_device_deps.sh [DIR]        (default .device-deps)
# Headers and CMake configs of fmt, spdlog, CLI11, nlohmann-json, Catch2 v2, OpenSSL and Gloo (c10d's
# ProcessGroupGloo.hpp includes it; headers only), with the
# shared libraries they link (libfmt9, libspdlog1.10, libssl3): about 10 MB unpacked.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-.device-deps}"
packages=(libfmt-dev libfmt9 libspdlog-dev libspdlog1.10 libcli11-dev nlohmann-json3-dev catch2
          libssl-dev libssl3 libgloo-dev)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
download() { (cd "$tmp" && apt-get download "${packages[@]}" >/dev/null 2>&1); }
if ! download; then
  # Package lists may be missing or stale on a fresh machine: refresh them once and retry.
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update >/dev/null 2>&1 || true
  download || { echo "fetch_device_deps: apt-get download ${packages[*]} failed" >&2; exit 1; }
fi
rm -rf "$dir"
mkdir -p "$dir"
for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$dir"; done
rm -rf "$dir/usr/share/doc" "$dir/usr/share/man"
find "$dir" -name '*.a' ! -name 'libCatch2*' -delete  # the build links the shared libraries; Catch2's CMake config needs its archives
# A manifest the check script verifies: package, version, and the .deb's SHA-256.
for deb in "$tmp"/*.deb; do
  printf '%s\t%s\t%s\n' "$(dpkg-deb -f "$deb" Package)" "$(dpkg-deb -f "$deb" Version)" \
    "$(sha256sum "$deb" | cut -d' ' -f1)"
done > "$dir/MANIFEST.tsv"
echo "fetch_device_deps: ${#packages[@]} packages unpacked into $dir ($(du -sh "$dir" | cut -f1))"
