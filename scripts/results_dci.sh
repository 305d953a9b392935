#!/usr/bin/env bash
# Regenerates docs/results_dci.md and docs/dci_depth<k>.png (DCI feature inversion of the Fashion-MNIST CNN;
# docs/dci.md): builds mint-dci-results and runs it on one thread at nice 10.
#
#   bash scripts/results_dci.sh                     the default sizes (1000 synthetic images; about 18 min)
#   bash scripts/results_dci.sh --synthetic 10000   the seed's 10K synthetic set as well (the cache is extended)
#   any mint-dci-results option passes through (--help lists them); BIN=path uses a binary already built
#
# The synthetic set (dci_out/synthetic.safetensors) and the modules after every stage (dci_out/*_depth<k>) are
# kept: a rerun or a run after a crash redoes nothing finished. Delete dci_out/ to start from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${BIN:-}" ]]; then
  bash scripts/setup.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMINT_BUILD_EXAMPLES=ON >/dev/null
  nice -n 10 cmake --build build -j1 --target mint_dci_results
  BIN=build/examples/mint-dci-results
fi
OMP_NUM_THREADS=1 nice -n 10 "$BIN" "$@"
