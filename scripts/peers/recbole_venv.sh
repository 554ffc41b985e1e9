#!/usr/bin/env bash
# Creates .venv-peers (ignored by git): RecBole 1.2.1 from PyPI for scripts/peers/recbole_sasrec.py.
# It sees Debian's python3-torch 1.13 through --system-site-packages, so no multi-GB PyTorch
# wheel is downloaded; RecBole and thop are installed without their dependencies for that
# reason (their torch requirement is Debian's), the rest of RecBole's requirements normally.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.venv-peers
scripts/python_torch.sh
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import recbole" 2> /dev/null; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install --quiet recbole==1.2.1 thop==0.1.1.post2209072238 --no-deps
  "$venv/bin/pip" install --quiet "numpy<2" scipy "pandas<2.2" tqdm colorlog==4.7.2 colorama==0.4.4 \
    scikit-learn pyyaml tensorboard tabulate plotly texttable
  echo "recbole_venv: pip's note that recbole wants ray can be ignored (ray serves only RecBole's" \
    "hyper-parameter search, which the peer does not use)" >&2
fi
echo "$venv/bin/python"
