#!/usr/bin/env bash
# Creates .venv-export (ignored by git) for the export tests and for serving with
# scripts/attnrec_reference.py: the `safetensors` package from PyPI over Debian's python3-torch
# (seen through --system-site-packages, so no multi-GB PyTorch wheel is downloaded). Prints the
# interpreter's path. Installs python3-torch with apt-get when /usr/bin/python3 has no torch.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-export
scripts/python_torch.sh
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import safetensors.torch" 2> /dev/null; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install --quiet "safetensors==0.4.5"
fi
echo "$venv/bin/python"
