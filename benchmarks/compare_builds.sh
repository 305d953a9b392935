#!/bin/bash
# Two builds of bench_inversion side by side (e.g. before and after an engine change), interleaved round by round
# so that a change in the machine's load hits both alike; prints the minimum per benchmark and side, and the ratio.
#
# Usage (from the repository root): benchmarks/compare_builds.sh OLD_BENCH_INVERSION NEW_BENCH_INVERSION
# The two may be one binary run two ways: OLD_ARGS / NEW_ARGS are extra arguments for each side, e.g.
#   OLD_ARGS=--gemm=eigen NEW_ARGS=--gemm=onednn benchmarks/compare_builds.sh B B   (two GEMM candidates)
# Knobs: FILTER ['^(iteration/teacher/|run/teacher/(dmi|smi76|pri4)/)'], ROUNDS [2], THREADS [2],
#        OUT_DIR [build-bench/compare-builds], IDLE_MAX_BUSY [10], IDLE_TIMEOUT [600] (idle.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -eq 2 && -x "$1" && -x "$2" ]] || { echo "usage: $0 OLD_BENCH_INVERSION NEW_BENCH_INVERSION" >&2; exit 2; }
FILTER=${FILTER:-'^(iteration/teacher/|run/teacher/(dmi|smi76|pri4)/)'}
ROUNDS=${ROUNDS:-2}
OUT_DIR=${OUT_DIR:-build-bench/compare-builds}
export OMP_NUM_THREADS=${THREADS:-2}
source "$(dirname "$(readlink -f "$0")")/idle.sh"  # busy_percent, wait_idle
mkdir -p "$OUT_DIR" && rm -f "$OUT_DIR"/{old,new}_*.json
for ((r = 1; r <= ROUNDS; ++r)); do
  for side in old new; do
    bin=$1 args=${OLD_ARGS:-}; [[ $side == new ]] && bin=$2 args=${NEW_ARGS:-}
    wait_idle
    echo "round $r/$ROUNDS $side, load $(cut -d' ' -f1 /proc/loadavg)" >&2
    # shellcheck disable=SC2086  # (args: words)
    "$bin" $args --benchmark_filter="$FILTER" --benchmark_out="$OUT_DIR/${side}_$r.json" --benchmark_out_format=json \
      >"$OUT_DIR/${side}_$r.log" 2>&1
  done
done
python3 - "$OUT_DIR" <<'PY'
import glob, json, sys
unit = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
def load(side):
    d = {}
    for f in glob.glob(f"{sys.argv[1]}/{side}_*.json"):
        for b in json.load(open(f))["benchmarks"]:
            d.setdefault(b["run_name"], []).append(b["real_time"] * unit[b["time_unit"]])
    return {k: min(v) for k, v in d.items()}
old, new = load("old"), load("new")
print("| benchmark (min over rounds) | old ms | new ms | new / old |\n|---|---:|---:|---:|")
for k in old:
    print(f"| {k.replace('/manual_time', '')} | {old[k]:.1f} | {new[k]:.1f} | {new[k] / old[k]:.3f} |")
PY
