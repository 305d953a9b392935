#!/bin/bash
# Every GEMM candidate of this build (mint/backend/cpu/gemm_backends.hpp: Eigen, OpenBLAS, BLIS, oneDNN, LIBXSMM)
# at the ViT shapes, one bench_gemm binary (--gemm=NAME), interleaved round by round so that a change in the
# machine's load hits every candidate alike; prints one markdown table of GFLOP/s with each candidate's results
# check (err_vs_bound: largest error against a double reference over the float error bound; <= 1 is correct).
#
# OpenBLAS picks its kernels from the CPU unless OPENBLAS_CORETYPE names a core. When that variable is set (the
# reference machine's environment sets OPENBLAS_CORETYPE=Haswell: AVX2 kernels), OpenBLAS also runs a second
# time without it (its own detection: AVX-512 kernels on AVX-512 CPUs), as "openblas_autodetect".
#
# Usage (from the repository root): benchmarks/compare_gemm.sh
# Knobs: THREADS [2], REPS [3] (rounds; medians reported), OUT_DIR [build-bench/gemm], FILTER [all],
#        IDLE_MAX_BUSY [10], IDLE_TIMEOUT [600] (as in compare_pytorch.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
REPS=${REPS:-3}
OUT_DIR=${OUT_DIR:-build-bench/gemm}
FILTER=${FILTER:-.}
export OMP_NUM_THREADS=$THREADS

source "$(dirname "$(readlink -f "$0")")/idle.sh"  # busy_percent, wait_idle

if [[ ! -f build-bench/CMakeCache.txt ]]; then
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMINT_BUILD_BENCHMARKS=ON -DMINT_BUILD_TESTS=OFF \
    -DMINT_BUILD_EXAMPLES=OFF >/dev/null
fi
cmake --build build-bench -j"$(nproc)" --target bench_gemm >/dev/null
bin=build-bench/benchmarks/bench_gemm
mkdir -p "$OUT_DIR"
# the candidates this build has (bench_gemm refuses the others by name)
cands=()
for c in eigen openblas blis onednn libxsmm; do
  if "$bin" --gemm="$c" --benchmark_list_tests=true >/dev/null 2>&1; then cands+=("$c"); fi
done
runs=("${cands[@]}")
if [[ -n "${OPENBLAS_CORETYPE:-}" && " ${cands[*]} " == *" openblas "* ]]; then runs+=(openblas_autodetect); fi
for ((r = 1; r <= REPS; ++r)); do
  for name in "${runs[@]}"; do
    wait_idle
    echo "bench_gemm: round $r/$REPS, $name" >&2
    if [[ $name == openblas_autodetect ]]; then envs=(-u OPENBLAS_CORETYPE); gemm=openblas; else envs=(); gemm=$name; fi
    env "${envs[@]}" "$bin" --gemm="$gemm" --benchmark_filter="$FILTER" --benchmark_out="$OUT_DIR/$name.$r.json" \
      --benchmark_out_format=json >"$OUT_DIR/$name.$r.txt" 2>&1
  done
done
cols=()
for name in "${runs[@]}"; do
  label=$name
  [[ $name == openblas ]] && label="openblas (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto})"
  cols+=("$label=$(ls "$OUT_DIR/$name".*.json | paste -sd,)")
done
echo "threads: $THREADS; rounds: $REPS (median); $(lscpu | grep -m1 'Model name' | tr -s ' ')"
python3 benchmarks/gemm_table.py "${cols[@]}"
