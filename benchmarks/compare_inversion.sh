#!/bin/bash
# mint's inversion engine vs the PyTorch eager reference of the same schedules (benchmarks/invert_pytorch.py),
# same machine, same thread count, one invocation: per-iteration times at each schedule's active counts, and
# whole DMI / SMI / PRI runs producing 128 images, with speedups over DMI beside PRI Table A1 and Theorem 1.
#
# Usage (from the repository root):
#   benchmarks/compare_inversion.sh
# Environment knobs (defaults in brackets):
#   MODELS ["teacher deit_tiny"]  which setups (bench_inversion.cpp's header describes both)
#   THREADS [2]  BUILD_DIR [build-bench]  OUT_DIR [$BUILD_DIR/compare-inversion]  PYTHON [/usr/bin/python3]
#   MINT_REPS [3]  TORCH_REPS [3]   repetitions of each per-iteration case (whole runs run once each)
#   MINT_GEMM [the build's]  GEMM candidate(s): --gemm=NAME or TEAM,SINGLE for bench_inversion (bench_gemm.cpp)
#   IDLE_MAX_BUSY [10] IDLE_TIMEOUT [600]  wait for an idle machine before each measurement (idle.sh)
#   FAMILIES ["iteration run"]  which benchmark families (run = the whole 128-image runs, the long part)
#   SKIP_BUILD [0]
# OPENBLAS_CORETYPE reaches PyTorch unchanged (unset it for OpenBLAS's own, faster, kernel choice); the
# table header prints it.
set -euo pipefail
cd "$(dirname "$0")/.."

MODELS=${MODELS:-teacher deit_tiny}
THREADS=${THREADS:-2}
BUILD_DIR=${BUILD_DIR:-build-bench}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/compare-inversion}
PYTHON=${PYTHON:-/usr/bin/python3}
MINT_REPS=${MINT_REPS:-3}
FAMILIES=${FAMILIES:-iteration run}
TORCH_REPS=${TORCH_REPS:-3}
export OMP_NUM_THREADS=$THREADS
source "$(dirname "$(readlink -f "$0")")/idle.sh"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DMINT_BUILD_BENCHMARKS=ON -DMINT_BUILD_TESTS=OFF \
      -DMINT_BUILD_EXAMPLES=OFF >/dev/null
  fi
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target bench_inversion >/dev/null
fi
mkdir -p "$OUT_DIR"
for m in $MODELS; do
  pat="^($(echo $FAMILIES | tr ' ' '|'))/$m/"
  wait_idle
  echo "$m: mint" >&2
  "$BUILD_DIR/benchmarks/bench_inversion" ${MINT_GEMM:+--gemm="$MINT_GEMM"} --benchmark_filter="$pat" --benchmark_repetitions="$MINT_REPS" \
    --benchmark_out="$OUT_DIR/mint_$m.json" --benchmark_out_format=json >"$OUT_DIR/log_$m.txt" 2>&1
  echo "  machine busy right after: $(busy_percent)%" >&2
  wait_idle
  echo "$m: PyTorch" >&2
  "$PYTHON" -W ignore benchmarks/invert_pytorch.py --threads "$THREADS" --filter "$pat" --reps "$TORCH_REPS" \
    --json "$OUT_DIR/torch_$m.json"
  echo "  machine busy right after: $(busy_percent)%" >&2
done

"$PYTHON" - "$OUT_DIR" $MODELS <<'EOF'
import json, os, statistics, sys
out, models = sys.argv[1], sys.argv[2:]
# PRI Table A1, DeiT-Tiny: throughput (its/s) and FLOPs (G) per method
A1 = {"dmi": (6.49, 949.11), "smi50": (10.94, 454.85), "smi76": (15.33, 229.89), "smi86": (18.04, 143.20),
      "pri2": (15.27, 348.88), "pri4": (30.71, 144.09), "pri7": (40.92, 73.86)}
print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
for m in models:
    rows = [b for b in json.load(open(f"{out}/mint_{m}.json"))["benchmarks"] if b.get("run_type") == "iteration"]
    torch = {r["name"]: r for r in json.load(open(f"{out}/torch_{m}.json"))["results"]}
    mint = {}
    for b in rows:
        name = b["name"].split("/manual_time")[0].split("/iterations:")[0]
        mint.setdefault(name, []).append(b)
    print(f"\n### {m}: one iteration at K active patches\n")
    print("| schedule | K | mint ms | PyTorch ms | PyTorch / mint | mint GFLOP/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, bs in mint.items():
        if not name.startswith("iteration/"): continue
        ms = statistics.median(b["real_time"] for b in bs)
        pt = torch[name]["ms"]
        print(f"| {name.split('/')[2]} | {int(bs[0]['active'])} | {ms:.2f} | {pt:.2f} | {pt / ms:.2f} | "
              f"{statistics.median(b['GFLOP/s'] for b in bs):.1f} |")
    runs = {n.split("/")[2]: bs for n, bs in mint.items() if n.startswith("run/")}
    if not runs: continue
    it = int(runs["dmi"][0]["iterations"])
    print(f"\n### {m}: whole runs producing 128 images (T = {it})\n")
    print("| method | images | mint s | PyTorch s | PyTorch / mint | mint speedup vs DMI | PyTorch speedup vs DMI | "
          "DMI/method executed FLOPs | Theorem 1 | Table A1 its/s ratio | Table A1 FLOPs ratio | mint peak MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    per_img = lambda s, imgs: s / imgs
    d_m = per_img(statistics.median(b["real_time"] for b in runs["dmi"]), runs["dmi"][0]["images"])
    d_t = per_img(torch[f"run/{m}/dmi"]["seconds"], torch[f"run/{m}/dmi"]["images"])
    d_f = runs["dmi"][0]["GFLOP"] / runs["dmi"][0]["images"]
    for meth, bs in runs.items():
        s = statistics.median(b["real_time"] for b in bs)
        imgs = bs[0]["images"]
        t = torch[f"run/{m}/{meth}"]
        assert t["images"] == imgs, (meth, t["images"], imgs)
        assert t["final_active"] == bs[0]["final_active"], (meth, t["final_active"], bs[0]["final_active"])
        th = 1.0 / bs[0]["theorem1_cost_vs_dmi"]  # the speedup form, DMI / method
        a1 = A1[meth]
        print(f"| {meth} | {int(imgs)} | {s:.2f} | {t['seconds']:.2f} | {t['seconds'] / s:.2f} | "
              f"{d_m / per_img(s, imgs):.2f} | {d_t / per_img(t['seconds'], imgs):.2f} | "
              f"{d_f / (bs[0]['GFLOP'] / imgs):.2f} | {th:.2f} | {a1[0] / A1['dmi'][0]:.2f} | {A1['dmi'][1] / a1[1]:.2f} | "
              f"{statistics.median(b['peak_MiB'] for b in bs):.1f} |")
EOF
