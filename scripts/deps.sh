#!/usr/bin/env bash
# Installs the Debian 12 packages healthivert needs to build, run and test.
#
#   scripts/deps.sh [build|test|dev]    (default: build)
#
#   build: compilers and libraries;
#   test:  + a one-node Slurm for the job tests, clang's libFuzzer, sanitizer
#          and OpenMP runtimes for the fuzz build, debootstrap for `fresh`;
#   dev:   + Python packages that only regenerate committed fixtures and run the
#          PyTorch side of bench/generator (never needed by the build or tests),
#          and a venv build-torch-venv/ (ignored by git, no root needed) with
#          the current PyTorch release from PyPI: the stronger peer that
#          bench/train and bench/generator measure beside Debian's 1.13 with
#          --python build-torch-venv/bin/python. The CPU-only wheel index
#          (~200 MB) is tried first, then PyPI's default wheel (CUDA build,
#          ~5 GB with its dependencies; it runs on the CPU as well).
#
# As root it runs apt-get itself; otherwise it prints the exact apt-get line
# and exits 1: it never calls sudo behind your back. Packages already
# installed are skipped, so re-running it is cheap.
#
# Packages go in with --no-install-recommends, so everything needed is listed
# here by name, including what another package only recommends (oneDNN's
# CMake config needs OpenCL: ocl-icd-opencl-dev is a mere Recommends of
# libdnnl-dev). tests/fresh proves the list on a minimal Debian 12 root.
set -euo pipefail

what="${1:-build}"
pkgs=(cmake make gcc g++ pkg-config git
      openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
      libnifti2-dev libsvm-dev liblinear-dev libdnnl-dev libopenblas-dev
      libcjson-dev libpng-dev zlib1g-dev libdeflate-dev
      ocl-icd-opencl-dev libcairo2-dev fonts-dejavu-core)
case "$what" in
  build) ;;
  test) pkgs+=(slurm-wlm clang libclang-rt-14-dev libomp-14-dev debootstrap) ;;
  dev)  pkgs+=(slurm-wlm clang libclang-rt-14-dev libomp-14-dev debootstrap python3-venv python3-torch python3-h5py python3-skimage python3-sklearn python3-nibabel) ;;
  *) echo "usage: scripts/deps.sh [build|test|dev]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# The PyTorch venv of `dev` (see the top); skipped when it already imports torch.
torch_venv() {
  local v=build-torch-venv
  [ "$what" = dev ] || return 0
  if [ -x "$v/bin/python" ] && "$v/bin/python" -c 'import torch' 2>/dev/null; then return 0; fi
  echo "deps: creating $v with the current PyTorch from PyPI" >&2
  python3 -m venv "$v"
  "$v/bin/pip" install -q numpy
  "$v/bin/pip" install -q torch --index-url https://download.pytorch.org/whl/cpu 2>/dev/null ||
    "$v/bin/pip" install -q torch
  "$v/bin/python" -c 'import torch; print("deps: venv torch", torch.__version__)' >&2
}

if [ ${#missing[@]} -eq 0 ]; then
  torch_venv
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "healthivert needs these Debian packages:" >&2
  echo "  apt-get install -y ${missing[*]}" >&2
  echo "Run that as root (e.g. with sudo), then run this command again." >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
torch_venv
