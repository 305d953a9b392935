#!/bin/bash
# The borrowed-CNN BN prior as an ablation lever (issue 20): mint-experiment with the official preset, the same
# sizes, once per prior weight W (smi.py's bn; 0 = off; the borrowed CNN is the embedded models/fmnist_resnet),
# one seed. Resumable: every inverted set and downstream figure is cached in out/bn_prior/cache; a rerun recomputes
# nothing finished. Writes out/bn_prior/W<W>/{results.md, summary.json}.
#   bash scripts/results_bn_prior.sh                       # W = 0, 0.01, 0.1
#   WEIGHTS="0 0.03" bash scripts/results_bn_prior.sh --seeds 3   # other weights; any mint-experiment option
# Needs the student backbone of scripts/results.sh (out/experiment/cache/backbone_classes0-4.safetensors) and
# build/examples/mint-experiment; one thread, nice 19.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
BIN=${BIN:-build/examples}
BACKBONE=${BACKBONE:-out/experiment/cache/backbone_classes0-4.safetensors}
if [[ ! -f "$BACKBONE" ]]; then
  echo "results_bn_prior.sh: no student backbone $BACKBONE (scripts/results.sh trains it)" >&2
  exit 1
fi
for w in ${WEIGHTS:-0 0.01 0.1}; do
  lever=()
  [[ "$w" == 0 ]] || lever=(--bn-prior "$w")
  nice -n 19 "$BIN/mint-experiment" --backbone "$BACKBONE" --cache out/bn_prior/cache --out "out/bn_prior/W$w" \
    --methods dmi,smi76 --images 70 --iterations 500 --preset official --tv 1e-4 --seeds 1 "${lever[@]}" "$@"
done
