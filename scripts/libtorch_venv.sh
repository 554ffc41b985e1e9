#!/usr/bin/env bash
# Creates .venv-libtorch/ with PyPI's torch==2.11.0 wheel (CUDA 13.0) and prints the LibTorch
# prefix inside it (site-packages/torch: headers, libtorch*.so, share/cmake/Torch) on stdout, for
# CMAKE_PREFIX_PATH. Used by `scripts/setup.sh --libtorch pypi`; a no-op when already installed.
#
# The wheel's own dependencies are the nvidia-* runtime wheels (~3 GB). The CUDA 13.0 toolkit
# here (nvcc 13.0, cuBLAS, cuFFT, cuRAND, cuSPARSE, cuSOLVER, cuDNN 9, NCCL 2, CUPTI) already
# provides the same libraries under the same names, so by default only the three that the
# toolkit lacks are installed from PyPI (cuSPARSELt, NVSHMEM, cuFile: ~230 MB) and the rest
# resolve from the toolkit through the loader's cache. Where the toolkit's libraries are not in
# the cache (or ATTNREC_TORCH_FULL_DEPS=1), the wheel is installed with all its dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-libtorch
torch_version=2.11.0
extras=(nvidia-cusparselt-cu13==0.8.0 nvidia-nvshmem-cu13==3.4.5 nvidia-cufile==1.15.1.6)
log() { echo "libtorch_venv: $*" >&2; }

if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
if ! command -v nvcc >/dev/null; then
  log "the PyPI LibTorch build needs the CUDA 13 toolkit (nvcc): LibTorch's CMake config looks"
  log "for it even when no CUDA code is compiled. Install it, or use the Debian build"
  log "(scripts/setup.sh without --libtorch)."
  exit 2
fi
nvcc_version="$(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
case "$nvcc_version" in
  13.*) ;;
  *) log "warning: torch==$torch_version targets CUDA 13.0, this toolkit is $nvcc_version" ;;
esac

python="${ATTNREC_PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv"
fi
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
installed="$(sed -n "s/^__version__ = '\([0-9.]*\).*/\1/p" "$site/torch/version.py" 2>/dev/null || true)"
if [ "$installed" != "$torch_version" ]; then
  toolkit_libs=yes
  for lib in libcudart.so.13 libcublas.so.13 libcudnn.so.9 libnccl.so.2 libcupti.so.13; do
    ldconfig -p 2>/dev/null | grep -q "$lib" || toolkit_libs=no
  done
  if [ "$toolkit_libs" = yes ] && [ "${ATTNREC_TORCH_FULL_DEPS:-0}" != 1 ]; then
    log "installing torch==$torch_version (CUDA libraries from the toolkit; ~760 MB download)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
      "torch==$torch_version" "${extras[@]}" >&2
  else
    log "installing torch==$torch_version with its nvidia-* dependencies (~3.5 GB download)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "torch==$torch_version" >&2
  fi
fi
# torch's pure-Python dependencies (~15 MB; not pulled by --no-deps): the environment's python
# then imports torch, and its torchrun (the same PyTorch as this LibTorch) launches the PyPI
# build's torchrun tests.
if ! "$venv/bin/python" -c 'import torch' >/dev/null 2>&1; then
  log "installing torch's Python dependencies (for its torchrun)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check filelock 'typing-extensions>=4.10' \
    'sympy>=1.13.3' 'networkx>=2.5.1' jinja2 'fsspec>=0.8.5' >&2 ||
    log "warning: torch's Python dependencies could not be installed; the torchrun tests skip"
fi
# numpy: the PyTorch peer of the GPU check (bench_vs_pytorch.py) needs it, and the test that
# rehearses that check on the CPU runs the peer with this environment's torch (~17 MB).
if ! "$venv/bin/python" -c 'import numpy' >/dev/null 2>&1; then
  log "installing numpy (for the PyTorch peer of scripts/device_check.sh)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check numpy==2.4.6 >&2 ||
    log "warning: numpy could not be installed; the device_check.sh rehearsal test skips"
fi
echo "$site/torch"
