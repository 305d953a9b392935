#!/bin/bash
# mint vs PyTorch eager, one model-inversion iteration (forward + CE + input-only backward), same machine,
# same thread count, in one invocation. Prints a table: case, mint ms/iter, PyTorch ms/iter, ratio
# (PyTorch / mint, > 1 means mint is faster), mint GFLOP/s and the fraction of the measured SGEMM peak
# (the best of bench_gemm's 1024^3 repetitions on the same thread count, same build).
#
# Usage (from the repository root):
#   benchmarks/compare_pytorch.sh
# Environment knobs (defaults in brackets):
#   THREADS [2]                 OpenMP threads for both (OMP_NUM_THREADS, torch.set_num_threads)
#   MINT_GEMM [the build's]     GEMM candidate(s) of the mint programs: --gemm=NAME or TEAM,SINGLE
#                               (eigen, openblas, blis, onednn, libxsmm; mint/backend/cpu/gemm_backends.hpp)
#   BUILD_DIR [build-bench]     configured and built if needed
#   ROUNDS [2]                  mint and PyTorch run alternately this many times; medians over all rounds
#   MINT_REPS [3] MIN_TIME [2]  Google Benchmark repetitions / min seconds per repetition
#   TORCH_RUNS [10]             timed PyTorch iterations per case and round (after 3 warm-up iterations)
#   OUT_DIR [$BUILD_DIR/compare]  where the JSON files go
#   IDLE_MAX_BUSY [10] IDLE_TIMEOUT [600]  before every measurement wait (up to IDLE_TIMEOUT s) until the
#                               machine's CPU use over 1 s is at most IDLE_MAX_BUSY percent: other processes
#                               on a 2-core machine distort OpenMP timings badly
#   PYTHON [/usr/bin/python3]   an interpreter with torch (Debian's python3-torch)
#   MINT_ENV []                 VAR=value words set for the mint programs only (e.g. GLIBC_TUNABLES=...)
#   SKIP_BUILD [0]              1: use $BUILD_DIR/benchmarks/bench_{vit,gemm} as they are (no cmake)
#   TORCH_ARGS []               extra arguments for compare_pytorch.py (e.g. --gather-first)
# The environment reaches both programs unchanged: OPENBLAS_CORETYPE (which OpenBLAS kernels PyTorch -- and
# mint with MINT_GEMM=openblas -- run) and GLIBC_TUNABLES (malloc behaviour) change the results a lot, and
# the table's header prints both.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
MINT_GEMM=${MINT_GEMM:-}
BUILD_DIR=${BUILD_DIR:-build-bench}
gemm_flag=(); [[ -n "$MINT_GEMM" ]] && gemm_flag=(--gemm="$MINT_GEMM")
ROUNDS=${ROUNDS:-2}
MINT_REPS=${MINT_REPS:-3}
MIN_TIME=${MIN_TIME:-2}
TORCH_RUNS=${TORCH_RUNS:-10}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/compare}
PYTHON=${PYTHON:-/usr/bin/python3}
TORCH_ARGS=${TORCH_ARGS:-}
MINT_ENV=${MINT_ENV:-}
export OMP_NUM_THREADS=$THREADS

source "$(dirname "$(readlink -f "$0")")/idle.sh"  # busy_percent, wait_idle

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DMINT_BUILD_BENCHMARKS=ON -DMINT_BUILD_TESTS=OFF \
      -DMINT_BUILD_EXAMPLES=OFF >/dev/null
  fi
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target bench_vit bench_gemm >/dev/null
fi
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR"/mint_vit_*.json "$OUT_DIR"/torch_*.json "$OUT_DIR"/gemm_peak.json

echo "threads=$THREADS, mint build $BUILD_DIR (MINT_GEMM=${MINT_GEMM:-default}), $ROUNDS round(s), MINT_ENV='$MINT_ENV'" >&2
wait_idle
env $MINT_ENV "$BUILD_DIR/benchmarks/bench_gemm" "${gemm_flag[@]}" --benchmark_filter='gemm/square' --benchmark_repetitions="$MINT_REPS" \
  --benchmark_out="$OUT_DIR/gemm_peak.json" --benchmark_out_format=json >"$OUT_DIR/log.txt" 2>&1
for r in $(seq 1 "$ROUNDS"); do
  wait_idle
  echo "round $r: mint bench_vit" >&2
  env $MINT_ENV "$BUILD_DIR/benchmarks/bench_vit" "${gemm_flag[@]}" --benchmark_repetitions="$MINT_REPS" --benchmark_min_time="$MIN_TIME" \
    --benchmark_out="$OUT_DIR/mint_vit_$r.json" --benchmark_out_format=json >>"$OUT_DIR/log.txt" 2>&1
  echo "  machine busy right after: $(busy_percent)%" >&2
  wait_idle
  echo "round $r: PyTorch" >&2
  "$PYTHON" benchmarks/compare_pytorch.py --threads "$THREADS" --runs "$TORCH_RUNS" $TORCH_ARGS --json "$OUT_DIR/torch_$r.json"
  echo "  machine busy right after: $(busy_percent)%" >&2
done

MINT_ENV="$MINT_ENV" "$PYTHON" - "$OUT_DIR" "$ROUNDS" <<'EOF'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def iterations(path):  # the per-repetition rows (not the aggregates)
    return [b for b in json.load(open(path))["benchmarks"] if b.get("run_type") == "iteration"]
peak_rows = iterations(f"{out}/gemm_peak.json")
# the peak is the best repetition (a peak is what the machine can do; noise only ever lowers it)
peak = max(b["GFLOP/s"] for b in peak_rows if b["name"].endswith("threads:team/real_time"))
peak1 = max(b["GFLOP/s"] for b in peak_rows if b["name"].endswith("threads:1/real_time"))
mint, torch_ms, torch_info, spread = {}, {}, None, {}
for r in range(1, rounds + 1):
    for b in iterations(f"{out}/mint_vit_{r}.json"):
        name = b["name"].split("/")[1]
        mint.setdefault(name, []).append(b)
    t = json.load(open(f"{out}/torch_{r}.json"))
    torch_info = t
    for x in t["results"]:
        torch_ms.setdefault(x["name"], []).append(x["ms_median"])
print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
      f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')} mint-only env: '{os.environ.get('MINT_ENV', '')}'")
print(f"threads: {torch_info['threads']} (OMP_NUM_THREADS); SGEMM 1024^3 peak through mint::cpu::gemm: "
      f"{peak:.1f} GFLOP/s on the team, {peak1:.1f} on one thread; PyTorch {torch_info['torch']}: "
      f"{torch_info['sgemm1024_gflops']:.1f} GFLOP/s")
hdr = f"| {'case':<18} | {'mint ms/iter':>12} | {'PyTorch ms/iter':>15} | {'PyTorch/mint':>12} | {'mint GFLOP/s':>12} | {'of peak':>7} | {'GFLOP/iter':>10} |"
print(hdr)
print("|" + "|".join("-" * (len(c)) for c in hdr.split("|")[1:-1]) + "|")
for name, rows in mint.items():
    ms = statistics.median(b["real_time"] for b in rows)  # Unit ms
    gf = statistics.median(b["GFLOP/s"] for b in rows)
    pt = statistics.median(torch_ms[name]) if name in torch_ms else float("nan")
    print(f"| {name:<18} | {ms:12.2f} | {pt:15.2f} | {pt / ms:12.2f} | {gf:12.1f} | {gf / peak:7.0%} | "
          f"{rows[0]['GFLOP_per_iter']:10.2f} |")
    spread[name] = (min(b["real_time"] for b in rows), max(b["real_time"] for b in rows),
                    min(torch_ms.get(name, [float("nan")])), max(torch_ms.get(name, [float("nan")])))
print("spread (min-max over repetitions and rounds): " + "; ".join(
    f"{n}: mint {a:.1f}-{b:.1f}, PyTorch {c:.1f}-{d:.1f} ms" for n, (a, b, c, d) in spread.items()))
for n in torch_ms:
    if n not in mint:
        print(f"PyTorch extra: {n} {statistics.median(torch_ms[n]):.2f} ms/iter")
EOF
