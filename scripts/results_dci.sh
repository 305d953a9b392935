#!/usr/bin/env bash
# Regenerates docs/results_dci.md and docs/dci_depth<k>.png (DCI feature inversion of the Fashion-MNIST CNN;
# docs/dci.md): builds mint-dci-results and runs it on one thread at nice 19.
#
#   bash scripts/results_dci.sh                     the defaults: real vs 1000 synthetic images (official
#                                                   DeepInversion loop at 200 iterations, the earlier 40-iteration
#                                                   recipe), 3 seeds; the levers (nojitter, first1, last: 500 images
#                                                   at 200 iterations; moreiters: 500 at 2000; train2x) at 500 images,
#                                                   seed 0, beside real and official 500; times in docs/results_dci.md
#   bash scripts/results_dci.sh --recipes official,previous   the main comparison only
#   any mint-dci-results option passes through (--help lists them); BIN=path uses a binary already built
#
# The synthetic sets (out/dci/syn_<recipe>.safetensors, rewritten after every batch) and the modules after every
# stage (out/dci/*_depth<k>) are kept: a rerun or a run after a crash redoes nothing finished. Delete out/dci/ to
# start from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${BIN:-}" ]]; then
  bash scripts/setup.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMINT_BUILD_EXAMPLES=ON >/dev/null
  nice -n 10 cmake --build build -j1 --target mint_dci_results
  BIN=build/examples/mint-dci-results
fi
OMP_NUM_THREADS=1 nice -n 19 "$BIN" "$@"
