#!/usr/bin/env bash
# Makes sure Debian's python3 has torch (python3-torch 1.13), numpy and venv: installs them with
# apt-get when /usr/bin/python3 cannot import torch. Shared by the virtual environments that see
# Debian's torch through --system-site-packages (export_venv.sh, peers/recbole_venv.sh).
set -euo pipefail
if ! /usr/bin/python3 -c "import torch" 2> /dev/null; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends python3-torch \
    python3-numpy python3-venv
fi
