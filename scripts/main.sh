#!/usr/bin/env bash
# The main job: install what is missing, build with -j2, and invert the embedded Fashion-MNIST teacher with
# Patch Rebirth Inversion (v = 4) for all 10 classes: 10 trajectories -> 40 sparse images, written as a PNG grid
# (out/invert/images.png), a synthetic dataset and a JSON report. Extra arguments go to mint-invert
# (`mint-invert --help`), e.g. `bash scripts/main.sh --method smi`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMINT_BUILD_TESTS=OFF -DMINT_BUILD_EXAMPLES=ON >/dev/null
cmake --build build -j2 --target mint_invert
./build/examples/mint-invert --batch 10 --iterations 2000 --out out/invert "$@"  # default: --method pri --v 4
