#!/usr/bin/env bash
# Regenerates docs/results_dci.md and docs/results_dci_depth<k>.png, then docs/results_dci_train2x.md and
# docs/results_dci_iters400.md (DCI feature inversion of the Fashion-MNIST CNN; docs/dci.md): builds
# mint-dci-results and runs it on one thread at nice 19.
#
#   bash scripts/results_dci.sh          the three documented studies:
#     1. real vs 1000 synthetic images (official DeepInversion loop at 200 iterations), 3 seeds; the levers
#        (train2x, nojitter, first1, last) at 500 images, seed 0, beside real and official 500
#     2. both sources trained twice as long (real included: equal training), official and nojitter at 1000
#        images, 3 seeds (docs/results_dci_train2x.md)
#     3. as 2, plus nojittermore: the nojitter set at 400 DeepInversion iterations per batch instead of 200,
#        1000 images, 3 seeds (docs/results_dci_iters400.md; 2 and 3 share every set and module but that one)
#   bash scripts/results_dci.sh ARGS...  one run with those mint-dci-results options (--help lists them)
#   BIN=path uses a binary already built
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
run() { OMP_NUM_THREADS=1 nice -n 19 "$BIN" "$@"; }
if [[ $# -gt 0 ]]; then
  run "$@"
else
  run --recipes official,train2x,nojitter,first1,last --sizes 1000 --lever-sizes 500 --seeds 0,1,2 --lever-seeds 0
  run --recipes official,nojitter --sizes 1000 --seeds 0,1,2 --lever-sizes 1000 --lever-seeds 0,1,2 \
    --lever-synthetic 1000 --stem-steps 800 --steps-alone 50 --steps-finetune 50 --name results_dci_train2x --notes -
  run --recipes official,nojitter,nojittermore --sizes 1000 --seeds 0,1,2 --lever-sizes 1000 --lever-seeds 0,1,2 \
    --lever-synthetic 1000 --more-synthetic 1000 --more-iters 400 --stem-steps 800 --steps-alone 50 \
    --steps-finetune 50 --name results_dci_iters400 --notes -
fi
