#!/usr/bin/env bash
# The main job: install what is missing, build with -j2, and run mint-inspect on real Fashion-MNIST test images.
# Extra arguments go to mint-inspect (see `mint-inspect --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMINT_BUILD_TESTS=OFF -DMINT_BUILD_EXAMPLES=ON >/dev/null
cmake --build build -j2 --target mint_inspect
./build/examples/mint-inspect "$@"
