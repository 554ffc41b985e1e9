#!/usr/bin/env bash
# Creates .venv-export (ignored by git), the Python tools of the tests and of serving: the
# `safetensors` package (scripts/attnrec_reference.py) and `tensorboard` (its event reader checks
# the event files of train.tensorboard) from PyPI, over Debian's python3-torch (seen through
# --system-site-packages, so no multi-GB PyTorch wheel is downloaded). Prints the interpreter's
# path. Installs python3-torch with apt-get when /usr/bin/python3 has no torch.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-export
scripts/python_torch.sh
if [ ! -x "$venv/bin/python" ] ||
  ! "$venv/bin/python" -c "import safetensors.torch, tensorboard" 2> /dev/null; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install --quiet "safetensors==0.4.5" "tensorboard==2.18.0"
fi
echo "$venv/bin/python"
