#!/usr/bin/env bash
# Installs what mint needs on Debian 12 (as root; uses sudo when not root), only the packages that are missing.
#   scripts/setup.sh            build + test dependencies
#   scripts/setup.sh --bench    also PyTorch (side-by-side references, fixture regeneration) and OpenBLAS (OpenMP build)
set -euo pipefail
pkgs=(build-essential cmake pkg-config libeigen3-dev libxtensor-dev libstb-dev nlohmann-json3-dev catch2 libbenchmark-dev
      zlib1g-dev libzip-dev libcli11-dev libssl-dev libopenmpi-dev openmpi-bin dataset-fashion-mnist libb64-dev
      fonts-dejavu-core chromium python3-torch python3-torchvision python3-matplotlib clang libomp-dev libclang-rt-dev
      libopenblas0-openmp libopenblas-openmp-dev libblis-openmp-dev libdnnl-dev ocl-icd-opencl-dev libxsmm-dev)
# ocl-icd-opencl-dev: Debian's dnnl-config.cmake (libdnnl-dev, built with the OpenCL GPU runtime) runs
# find_package(OpenCL REQUIRED); libdnnl-dev only recommends it, so --no-install-recommends leaves it out.
if [[ "${1:-}" == "--bench" ]]; then
  pkgs+=(python3-torch python3-numpy libopenblas0-openmp libopenblas-openmp-dev linux-perf)  # perf: breakdown.sh
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ "${1:-}" == "--bench" ]]; then
  # PyTorch runs on whatever libblas.so.3 is selected; Debian's reference BLAS is ~15x slower than OpenBLAS and the
  # pthread OpenBLAS oversubscribes the cores under PyTorch's OpenMP. Select the OpenMP OpenBLAS for every alternative.
  for a in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
    p=$(update-alternatives --list "${a}-x86_64-linux-gnu" 2>/dev/null | grep openblas-openmp | head -1 || true)
    [[ -n "$p" ]] && $SUDO update-alternatives --set "${a}-x86_64-linux-gnu" "$p" >/dev/null
  done
fi
exit 0
