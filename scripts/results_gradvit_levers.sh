#!/usr/bin/env bash
# Regenerates docs/results_gradvit_levers.md: GradViT at batch 8, one lever at a time on the same batch (Fashion-MNIST
# test images 0..7) and init seed, plus APRIL's closed form at batch 1 on every checkpoint (issue 19).
#
#   bash scripts/results_gradvit_levers.sh             T = 300 (the screen; ~3 min per run on a loaded 2-core machine)
#   ITER=2000 bash scripts/results_gradvit_levers.sh   any T (a separate cache folder per T; T != 300 writes
#                                                      docs/results_gradvit_levers_T<ITER>.md)
#   ONLY="ig_e1 ig_converged" ...                      only these rows (the long runs: ITER=20000 ONLY=...)
#   BIN=/path/to/mint-attack-gradients ...             use a binary already built (otherwise cmake builds it)
#
# Resumable: a run whose JSON exists in out/results_gradvit_levers/T<ITER>/ is not run again, and a run that was
# interrupted continues from its last saved state (every 500 iterations, mint-attack-gradients --checkpoint-every),
# so an interrupted study continues where it stopped. One run at a time, OMP_NUM_THREADS=1, nice 19 (NICE=N: N).
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${ITER:-300}
if [[ -z "${BIN:-}" ]]; then
  bash scripts/setup.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMINT_BUILD_EXAMPLES=ON >/dev/null
  cmake --build build -j1 --target mint_attack_gradients mint_train_teacher
  BIN=./build/examples/mint-attack-gradients
fi
OUT=out/results_gradvit_levers/T$ITER
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
run() {  # run NAME ARGS...: skipped when OUT/NAME.json exists
  local name=$1
  shift
  if [[ -n "${ONLY:-}" && " $ONLY " != *" $name "* ]]; then return; fi
  if [[ -f "$OUT/$name.json" ]]; then echo "$name: cached"; return; fi
  nice -n "${NICE:-19}" "$BIN" --out "$OUT" --name "$name" "$@" | tail -1 | sed "s|^|$name:|"
}
M=models
# APRIL's closed form, batch 1, on each checkpoint (no iterations)
for ck in fmnist_vit fmnist_vit_e1 fmnist_vit_init; do
  run "april_cf_$ck" --batch 1 --method april-closed-form --model "$M/$ck.safetensors"
done
B8=(--batch 8 --iterations "$ITER" --distance cos --tv 1e-3 --checkpoint-every 500)  # the IG configuration of results_gradvit.md
# lever 1: the victim's training state
run ig_converged "${B8[@]}" --model "$M/fmnist_vit.safetensors"
run ig_e1 "${B8[@]}" --model "$M/fmnist_vit_e1.safetensors"
run ig_init "${B8[@]}" --model "$M/fmnist_vit_init.safetensors"
# the remaining levers on the one-epoch checkpoint (trained, but not yet confident)
E1=("${B8[@]}" --model "$M/fmnist_vit_e1.safetensors")
run e1_april1 "${E1[@]}" --april 1                                  # APRIL's position-embedding term
run e1_labels_repeats "${E1[@]}" --labels repeats                   # recovered labels with repeats
run e1_prior_sched "${E1[@]}" --alpha-image 1e-2 --schedule 1       # BN prior from T/2 (Eq. 5-6)
run e1_prior_nosched "${E1[@]}" --alpha-image 1e-2                  # BN prior throughout
run e1_dlg "${E1[@]}" --distance l2 --tv 0                          # DLG baseline
# where recovery breaks: the IG configuration on the one-epoch checkpoint at batch 1, 2 and 4 (images 0..B-1)
for b in 1 2 4; do
  run "e1_ig_b$b" --batch "$b" --iterations "$ITER" --distance cos --tv 1e-3 --model "$M/fmnist_vit_e1.safetensors"
done
cmd="ITER=$ITER${ONLY:+ ONLY=\"$ONLY\"} bash scripts/results_gradvit_levers.sh"
# the objective and the optimiser (the second screen, ITER=2000 ONLY=...): where the objective's own minimiser lies
# (the oracle start at the hidden batch), the TV weight, the rate and its schedule, signed gradients, the per-tensor
# cosine, the start, registration; on the converged teacher unless the name says otherwise
C=(--batch 8 --iterations "$ITER" --distance cos --checkpoint-every 500 --model "$M/fmnist_vit.safetensors")
run truth_tv1e-3 "${C[@]}" --tv 1e-3 --init truth
run truth_tv0 "${C[@]}" --tv 0 --init truth
run truth_tv1e-4 "${C[@]}" --tv 1e-4 --init truth
run truth_tv0_lr0.01 "${C[@]}" --tv 0 --init truth --lr 0.01
run tv1e-4 "${C[@]}" --tv 1e-4
run tv1e-5 "${C[@]}" --tv 1e-5
run tv0 "${C[@]}" --tv 0
run tv1e-5_lr0.01 "${C[@]}" --tv 1e-5 --lr 0.01
run tv1e-5_constlr "${C[@]}" --tv 1e-5 --cosine-lr 0
run tv1e-5_signed "${C[@]}" --tv 1e-5 --signed 1
run tv1e-5_layercos "${C[@]}" --tv 1e-5 --distance layer-cos
run tv1e-5_mean "${C[@]}" --tv 1e-5 --init mean
run tv1e-5_reg "${C[@]}" --tv 1e-5 --seeds 4 --registration 1e-2 --register-every 100
run tv1e-5_e1 "${C[@]}" --tv 1e-5 --model "$M/fmnist_vit_e1.safetensors"
run tv1e-5_init "${C[@]}" --tv 1e-5 --model "$M/fmnist_vit_init.safetensors"
# the same levers at TV 1e-4, the best weight of the TV rows above
for lever in "lr0.01 --lr 0.01" "signed --signed 1" "layercos --distance layer-cos" \
             "reg --seeds 4 --registration 1e-2 --register-every 100" \
             "e1 --model $M/fmnist_vit_e1.safetensors" "init --model $M/fmnist_vit_init.safetensors"; do
  read -r tag args <<<"$lever"
  # shellcheck disable=SC2086  # the lever's options are words
  run "tv1e-4_$tag" "${C[@]}" --tv 1e-4 $args
done
run tv1e-4_april "${C[@]}" --tv 1e-4 --april 1  # APRIL's position-embedding term
# a victim whose first layer pins a batch-1 image in closed form with room to spare: patch 14 (4 tokens of 196
# pixels, dim 64), one epoch of mint-train-teacher (5 s); trained into OUT/models/ when missing
P14="$OUT/models/p14_e1.safetensors"
if [[ " ${ONLY:-p14} " == *" p14"* && ! -f "$P14" ]]; then
  mkdir -p "$OUT/models"
  "$(dirname "$BIN")/mint-train-teacher" --patch 14 --epochs 1 --flip 1 --warmup 0.1 --threads 1 --out "$OUT/models" \
    --name p14_e1 >/dev/null
fi
run p14_cf --batch 1 --method april-closed-form --model "$P14"
run p14_b1 --batch 1 --iterations "$ITER" --distance cos --tv 1e-3 --model "$P14"
run p14_b1_tv0 --batch 1 --iterations "$ITER" --distance cos --tv 0 --model "$P14"
run p14_b8 "${C[@]}" --tv 1e-4 --model "$P14"
# a wider victim at initialisation (dim 192, DeiT-Tiny's width, 3 heads, MLP 768, patch 4): more gradient entries
# per unknown pixel (issue 19's "wider ViT" lever); trained into OUT/models/ when missing (one AdamW step at 1e-9)
WIDE="$OUT/models/wide192_init.safetensors"
if [[ " ${ONLY:-wide} " == *" wide"* && ! -f "$WIDE" ]]; then
  mkdir -p "$OUT/models"
  "$(dirname "$BIN")/mint-train-teacher" --dim 192 --heads 3 --mlp 768 --epochs 1 --train-limit 128 --batch 128 \
    --lr 1e-9 --min-lr 0 --warmup 0 --threads 1 --out "$OUT/models" --name wide192_init >/dev/null
fi
run wide_ig "${C[@]}" --tv 1e-3 --model "$WIDE"
run wide_tv1e-4_signed "${C[@]}" --tv 1e-4 --signed 1 --model "$WIDE"
# the victim trained with DeiT's recipe (label smoothing 0.1, mixup/cutmix, erasing: models/fmnist_vit_deit, 88.0 %),
# whose images all stay visible in the batch gradient (the JSON's hidden_gradient_norm_per_image), and the subspace
# prior: the top-K principal components of the 60,000 Fashion-MNIST training images (public data; the batch is from
# the test split), on which Adam optimises instead of the pixels (the third screen, ITER=1000 ONLY=...)
D=(--batch 8 --iterations "$ITER" --distance cos --checkpoint-every 500 --model "$M/fmnist_vit_deit.safetensors")
run deit_tv1e-4 "${D[@]}" --tv 1e-4
run deit_tv1e-3 "${D[@]}" --tv 1e-3
run deit_sub128 "${D[@]}" --tv 0 --subspace 128
run deit_sub64 "${D[@]}" --tv 0 --subspace 64
run deit_sub256 "${D[@]}" --tv 0 --subspace 256
run deit_sub128_s4 "${D[@]}" --tv 0 --subspace 128 --seeds 4
run deit_sub128_truth "${D[@]}" --tv 0 --subspace 128 --init truth
run sub128_converged "${C[@]}" --tv 0 --subspace 128
run sub128_e1 "${C[@]}" --tv 0 --subspace 128 --model "$M/fmnist_vit_e1.safetensors"
# the pixel attack on the DeiT-recipe victim: TV weight, signed Adam, per-tensor cosine, seeds, where the
# objective's minimiser lies (oracle), and the start at each label's public class mean (at three rates)
run deit_tv3e-4 "${D[@]}" --tv 3e-4
run deit_tv3e-5 "${D[@]}" --tv 3e-5
run deit_tv1e-4_signed "${D[@]}" --tv 1e-4 --signed 1
run deit_tv1e-4_layercos "${D[@]}" --tv 1e-4 --distance layer-cos
run deit_tv1e-4_s4 "${D[@]}" --tv 1e-4 --seeds 4
run deit_sub128_tv1e-4 "${D[@]}" --tv 1e-4 --subspace 128
run deit_truth_tv1e-4 "${D[@]}" --tv 1e-4 --init truth
run deit_truth_tv0 "${D[@]}" --tv 0 --init truth
run deit_tv1e-4_cm "${D[@]}" --tv 1e-4 --init class-mean
run deit_sub128_cm "${D[@]}" --tv 0 --subspace 128 --init class-mean
run cm_converged "${C[@]}" --tv 1e-4 --init class-mean
run deit_tv1e-4_cm_lr0.03 "${D[@]}" --tv 1e-4 --init class-mean --lr 0.03
run deit_tv1e-4_cm_lr0.01 "${D[@]}" --tv 1e-4 --init class-mean --lr 0.01
run deit_tv1e-5_cm_lr0.01 "${D[@]}" --tv 1e-5 --init class-mean --lr 0.01
run deit_tv0_cm_lr0.01 "${D[@]}" --tv 0 --init class-mean --lr 0.01
# the subspace prior from the class means: its TV, components, rate
run deit_sub128_cm_tv1e-4 "${D[@]}" --tv 1e-4 --subspace 128 --init class-mean
run deit_sub256_cm "${D[@]}" --tv 0 --subspace 256 --init class-mean
run deit_sub128_cm_lr0.03 "${D[@]}" --tv 0 --subspace 128 --init class-mean --lr 0.03
run deit_sub512_cm "${D[@]}" --tv 0 --subspace 512 --init class-mean
run deit_sub256_cm_lr0.03 "${D[@]}" --tv 0 --subspace 256 --init class-mean --lr 0.03
# the best row with the labels recovered from the gradient (repeats rule), on another batch, on the converged teacher
run deit_sub256_cm_repeats "${D[@]}" --tv 0 --subspace 256 --init class-mean --labels repeats
run deit_sub256_cm_first8 "${D[@]}" --tv 0 --subspace 256 --init class-mean --first 8
run sub256_cm_converged "${C[@]}" --tv 0 --subspace 256 --init class-mean
/usr/bin/python3 scripts/results_gradvit_levers.py "$OUT" "$ITER" "$cmd" ${ONLY:-}
