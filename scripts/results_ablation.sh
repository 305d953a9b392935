#!/usr/bin/env bash
# The same-budget ablation of issue 20 (one command, resumable): DMI, 70 images, T = 500, 3 seeds, linear probe,
# one lever changed per row against the official-code preset:
#   official        batch-Frobenius TV 1e-4 + the official code's jitter and flip (mint::run_official)
#   official_bn0.1  + the borrowed CNN's BN-statistics prior, weight 0.1 (smi.py's bn lever)
#   official_best   + best-image keeping (each stage keeps its lowest-loss canvas, DeepInversion's best_inputs)
#   paper_tv1e-4    SMI Eq. 2's TV (the printed form) at the printed weight 1e-4, jitter + flip
#   paper_tv1e-4_nojitter   the same without jitter and flip
#   paper_tv3e-2    SMI Eq. 2's TV at the raised weight of the first study (docs/results.md), jitter + flip
#   official_T2000  the official preset at T = 2000 (four times the budget: the T lever)
# Every set and downstream figure is cached in out/bn_prior/cache (shared with scripts/results_bn_prior.sh, whose
# W = 0 and W = 0.1 runs are the first two rows), so a rerun recomputes nothing finished. Then
# scripts/ablation_table.py writes docs/results/issue20_ablation.md from the runs' summary.json.
# One thread, nice 10. Needs the student backbone of scripts/results.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/experiment_env.sh  # OMP_NUM_THREADS=1, CACHE, BACKBONE, BIN, the build, ensure_backbone
ensure_backbone
COMMON=(--backbone "$BACKBONE" --cache out/bn_prior/cache --methods dmi --images 70 --seeds 3)
run() {
  local name=$1
  shift
  local t0=$SECONDS
  nice -n 10 "$BIN/mint-experiment" "${COMMON[@]}" --out "out/ablation/$name" "$@"
  echo "$name: $((SECONDS - t0)) s"
}
run official --preset official --tv 1e-4 --iterations 500
run official_bn0.1 --preset official --tv 1e-4 --iterations 500 --bn-prior 0.1
run official_best --preset official --tv 1e-4 --iterations 500 --kept best
run paper_tv1e-4 --preset paper --tv 1e-4 --augment jitterflip --iterations 500
run paper_tv1e-4_nojitter --preset paper --tv 1e-4 --augment none --iterations 500
run paper_tv3e-2 --preset paper --tv 3e-2 --augment jitterflip --iterations 500
run official_T2000 --preset official --tv 1e-4 --iterations 2000
/usr/bin/python3 scripts/ablation_table.py out/ablation docs/results/issue20_ablation.md \
  official official_bn0.1 official_best paper_tv1e-4 paper_tv1e-4_nojitter paper_tv3e-2 official_T2000
