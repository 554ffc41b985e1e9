#!/usr/bin/env bash
# Installs what the browser and terminal tests drive, from Debian, when missing: chromium
# (headless: the report's and TensorBoard's pages, screenshots) and tmux (the progress bar at
# 80 and 130 columns), mpirun (openmpi-bin: a 2-process launch). Without them those tests skip
# with a message.
set -euo pipefail
missing=()
command -v chromium > /dev/null || missing+=(chromium fonts-dejavu-core)
command -v tmux > /dev/null || missing+=(tmux)
command -v mpirun > /dev/null || missing+=(openmpi-bin)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi
