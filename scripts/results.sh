#!/usr/bin/env bash
# Regenerates docs/results.md (issue 4: DMI vs SMI vs PRI on the embedded Fashion-MNIST teacher) with one command:
#
#   bash scripts/results.sh --seeds 5       # the documented run (5 seeds, 280 images, T = 280, TV 3e-2)
#   bash scripts/results.sh                 # the defaults: the same with 3 seeds
#   bash scripts/results.sh --images 560 --iterations 560   # bigger: any mint-experiment option
#   EFFICIENCY_ONLY=1 bash scripts/results.sh   # only the efficiency table, fresh timings (idle machine!)
#
# Steps (each cached under out/experiment/cache, so a rerun or a run after a crash recomputes nothing finished):
#   1. build mint-train-teacher and mint-experiment (build/, Release, those two targets only);
#   2. pre-train the student backbone on real images of classes 0-4 only (mint-train-teacher --classes), once;
#   3. mint-experiment: invert, distil, quantize, per seed; writes out/experiment/{results.md, summary.json};
#   4. docs/results.md = the text below + the generated tables; scripts/plot_results.py (matplotlib) draws the
#      figures from summary.json into docs/results/.
# The official-code inversion (issue 20; run_official: batch-Frobenius TV, jitter + flip, whole-canvas Adam):
#   bash scripts/results.sh --preset official --tv 1e-4 --iterations 2000 --seeds 3  (cached apart from the paper form)
# Everything runs on one thread (OMP_NUM_THREADS=1) at nice 10.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/experiment_env.sh  # OMP_NUM_THREADS=1, CACHE, BACKBONE, BIN, the build, ensure_backbone
# docs/results.md = the text of scripts/results_intro.md around the tables of out/experiment/results.md and,
# when present, the separate efficiency run (out/experiment/efficiency.md)
assemble() {
  [[ -f out/experiment/results.md ]] || { echo "no out/experiment/results.md yet: run without EFFICIENCY_ONLY first"; return; }
  mkdir -p docs/results
  /usr/bin/python3 scripts/plot_results.py out/experiment/summary.json docs/results
  local backbone_acc
  backbone_acc=$(/usr/bin/python3 -c "import json; j=json.load(open('$CACHE/backbone_classes0-4.json')); print('%.2f %% on the %d test images of classes 0-4, %.0f s on %d thread(s)' % (j['test_accuracy_pct'], j['data']['test_images'], j['wall_seconds'], j['threads']))")
  {
    sed -n '/^<!-- intro -->$/,/^<!-- end intro -->$/p' scripts/results_intro.md | sed '1d;$d' | sed "s|@BACKBONE@|$backbone_acc|"
    echo
    cat out/experiment/results.md
    if [[ -f out/experiment/efficiency.md ]]; then
      echo
      echo "## Efficiency, separate run (\`EFFICIENCY_ONLY=1 bash scripts/results.sh\`)"
      echo
      cat out/experiment/efficiency.md
    fi
    echo
    sed -n '/^<!-- discussion -->$/,/^<!-- end discussion -->$/p' scripts/results_intro.md | sed '1d;$d'
  } > docs/results.md
  echo "wrote docs/results.md, docs/results/{accuracy_vs_time,accuracy_vs_time_unseen,confidence}.png"
}

if [[ -n "${EFFICIENCY_ONLY:-}" ]]; then
  nice -n 10 "$BIN/mint-experiment" --efficiency-only 1 --out out/experiment "$@"
  assemble
  exit 0
fi
ensure_backbone
start=$(date +%s)
nice -n 10 "$BIN/mint-experiment" --backbone "$BACKBONE" --cache "$CACHE" --out out/experiment "$@"
echo "mint-experiment: $(( $(date +%s) - start )) s"
assemble
