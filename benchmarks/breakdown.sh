#!/bin/bash
# Per-iteration breakdown of bench_inversion by kind of work, from `perf record -e cpu-clock` samples (software
# sampling: works without hardware counters): GEMM (the SGEMM candidates' kernels, packing and drivers, and the
# JIT-generated code of oneDNN and LIBXSMM, which perf files under "[JIT] tid N"), elementwise
# (everything else in the binary and libm/libc: LayerNorm, GELU, softmax, TV, Adam, copies, zero-fills), OpenMP
# runtime (libgomp: fork/join and the barrier spin of idle threads) and kernel. Prints one markdown row per benchmark.
#
# Usage (from the repository root): benchmarks/breakdown.sh BENCH_INVERSION FILTER...
# Knobs: THREADS [1], IDLE_MAX_BUSY / IDLE_TIMEOUT (idle.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 2 && -x "$1" ]] || { echo "usage: $0 BENCH_INVERSION FILTER..." >&2; exit 2; }
if ! command -v perf >/dev/null; then
  echo "$0: perf is not installed (Debian linux-perf: bash scripts/setup.sh --bench)" >&2
  exit 2
fi
bin=$1; shift
export OMP_NUM_THREADS=${THREADS:-1}
source "$(dirname "$(readlink -f "$0")")/idle.sh"  # wait_idle
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| benchmark | threads | ms/iter | GEMM % | elementwise % | OpenMP runtime % | kernel % |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for filter in "$@"; do
  wait_idle
  perf record -q -e cpu-clock -F 1999 -o "$tmp/perf.data" "$bin" --benchmark_filter="$filter" \
    --benchmark_format=json >"$tmp/out.json" 2>/dev/null
  ms=$(python3 -c '
import json, sys
b = json.load(open(sys.argv[1]))["benchmarks"][0]
print("%.1f" % (b["real_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]))' "$tmp/out.json")
  perf report -q -i "$tmp/perf.data" --no-children --sort dso,symbol -g none --percent-limit 0 2>/dev/null |
    python3 -c '
import re, sys
kinds = {"GEMM": 0.0, "elementwise": 0.0, "omp": 0.0, "kernel": 0.0}
gemm = re.compile(r"gebp|gemm|gemv|general_matrix|sgemm|openblas|blis|bli_|dnnl|libxsmm|triangular", re.I)
for line in sys.stdin:
    # dso "[JIT] tid N": code generated at run time, which here is only the GEMM kernels of oneDNN and LIBXSMM
    m = re.match(r"\s*([\d.]+)%\s+(\[JIT\] tid \d+|\S+)\s+\[(.)\]\s+(.*)", line)
    if not m: continue
    pct, dso, where, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4)
    if where == "k": kinds["kernel"] += pct
    elif "libgomp" in dso: kinds["omp"] += pct
    elif dso.startswith("[JIT]") or gemm.search(sym) or gemm.search(dso): kinds["GEMM"] += pct
    else: kinds["elementwise"] += pct
print(" | ".join(f"{kinds[k]:.1f}" for k in ("GEMM", "elementwise", "omp", "kernel")))' >"$tmp/kinds"
  echo "| $filter | $OMP_NUM_THREADS | $ms | $(cat "$tmp/kinds") |"
done
