#!/usr/bin/env bash
# Regenerates docs/results_gradvit.md and its figures (docs/figures/gradvit/*.png): GradViT's gradient-inversion
# attack on the embedded Fashion-MNIST ViT teacher, every run a call of mint-attack-gradients (docs/gradvit.md).
#
#   bash scripts/results_gradvit.sh            the quick size (T = 800 iterations; 10.3 min measured, up to ~25 under heavy load)
#   bash scripts/results_gradvit.sh --full     T = 4000 (5x longer)
#   ITER=1000 bash scripts/results_gradvit.sh  any T
#   BIN=/path/to/mint-attack-gradients ...     use a binary already built (otherwise cmake builds it in build/)
#   SIGNAL=1 bash scripts/results_gradvit.sh   the same tables where batch 8 recovers (issue 19): the DeiT-recipe
#                                              victim models/fmnist_vit_deit, every GradViT row on the subspace prior
#                                              (256 components of the public training split) from the class means,
#                                              the seeds of R_reg spread around them (--start-std 0.5), plus an APRIL
#                                              baseline; writes docs/results_gradvit_signal.md (T = 1000 by default)
#
# Runs with OMP_NUM_THREADS=1 under nice. Per-run JSON reports and grids go to out/results_gradvit/ (SIGNAL=1:
# out/results_gradvit_signal/). Resumable: a run whose JSON is there is not run again, and an interrupted run
# continues from its saved state (mint-attack-gradients --checkpoint-every, 500 by default); remove the folder to
# start over (e.g. after changing ITER).
set -euo pipefail
cd "$(dirname "$0")/.."
SIGNAL=${SIGNAL:-0}
ITER=${ITER:-$([[ "$SIGNAL" == 1 ]] && echo 1000 || echo 800)}
[[ "${1:-}" == "--full" ]] && ITER=4000
if [[ -z "${BIN:-}" ]]; then
  bash scripts/setup.sh  # what a fresh machine lacks (Eigen, stb, the Fashion-MNIST package, ...)
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMINT_BUILD_EXAMPLES=ON >/dev/null  # only the targets below are built
  cmake --build build -j1 --target mint_attack_gradients
  BIN=./build/examples/mint-attack-gradients
fi
OUT=out/results_gradvit
VICTIM=(); BASE=(); SPREAD=(); LEAK=(--distance cos --tv 1e-3)
if [[ "$SIGNAL" == 1 ]]; then
  OUT=out/results_gradvit_signal
  VICTIM=(--model models/fmnist_vit_deit.safetensors)
  BASE=(--subspace 256 --init class-mean)
  SPREAD=(--start-std 0.5)                     # seeds of one start differ only by this
  LEAK=(--distance cos --tv 0 "${BASE[@]}")    # Tables 4-5 on the configuration that recovers
fi
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
start=$(date +%s)
run() {  # run NAME BATCH ARGS...
  local name=$1 batch=$2
  shift 2
  if [[ -f "$OUT/$name.json" ]]; then echo "$name: cached"; return; fi
  nice -n 10 "$BIN" --batch "$batch" --iterations "$ITER" --out "$OUT" --name "$name" "${VICTIM[@]}" "$@" | tail -1 |
    sed "s|^|$name:|"
}
# the priors as GradViT Sec. 3.4 weighs them, on mint's cosine matching loss (docs/results_gradvit.md)
PRIOR=(--tv 1e-3 --l2 1e-4)                      # R_prior (Eq. 11): TV + L2
REG=(--seeds 2 --registration 1e-2 --register-from 0.5 "${SPREAD[@]}")  # R_reg (Eq. 9-10) over 2 seeds, from T/2
IMAGE=(--alpha-image 1e-2)                       # R_image (Eq. 4), the CNN prior models/fmnist_resnet
PATCH=(--patch 1e-3)                             # R_patch (Eq. 8)
GRADVIT=(--distance cos "${PRIOR[@]}" "${REG[@]}" "${IMAGE[@]}" --schedule 1 "${PATCH[@]}" "${BASE[@]}")

# baselines (batch 8)
run dlg 8 --distance l2 --tv 0
run ig 8 --distance cos --tv 1e-3
[[ "$SIGNAL" == 1 ]] && run april 8 --distance cos --tv 1e-3 --april 1  # IG + APRIL's position-embedding term
[[ "$SIGNAL" == 1 ]] && run base 8 --distance cos --tv 0 "${BASE[@]}"   # the prior alone, no GradViT term
# ablation, GradViT Table 2 (batch 8)
run abl_reg 8 --distance cos "${PRIOR[@]}" "${REG[@]}" "${BASE[@]}"
run abl_image 8 --distance cos "${PRIOR[@]}" "${REG[@]}" "${IMAGE[@]}" "${BASE[@]}"
run abl_sched 8 --distance cos "${PRIOR[@]}" "${REG[@]}" "${IMAGE[@]}" --schedule 1 "${BASE[@]}"
run gradvit_b8 8 "${GRADVIT[@]}"
# batch sizes (batch 8 is the last ablation row)
run gradvit_b1 1 "${GRADVIT[@]}"
[[ "$SIGNAL" == 1 ]] && run gradvit_b2 2 "${GRADVIT[@]}"
run gradvit_b4 4 "${GRADVIT[@]}"
run gradvit_b16 16 "${GRADVIT[@]}"
# batch sizes of the base (SIGNAL=1: the configuration that recovers at batch 8; its batch 8 is the base row)
if [[ "$SIGNAL" == 1 ]]; then
  for b in 1 2 4 16; do run "base_b$b" "$b" --distance cos --tv 0 "${BASE[@]}"; done
fi
# leakage studies, GradViT Tables 4-5 (batch 8), on the IG configuration (cosine + TV, one seed) to keep them cheap
run layer_wo0 8 "${LEAK[@]}" --filter no-blocks:0-0
run layer_wo12 8 "${LEAK[@]}" --filter no-blocks:1-2
run layer_wo3 8 "${LEAK[@]}" --filter no-blocks:3-3
run comp_mlp 8 "${LEAK[@]}" --filter mlp
run comp_attn 8 "${LEAK[@]}" --filter attn
secs=$(( $(date +%s) - start ))
cmd="bash scripts/results_gradvit.sh $*"
[[ "$SIGNAL" == 1 ]] && cmd="SIGNAL=1 $cmd"
python3 scripts/results_gradvit.py "$OUT" "$ITER" "$secs" "$cmd" "$SIGNAL"
