#!/bin/bash
# Eigen's own GEMM kernels vs Eigen forwarding to OpenBLAS (MINT_BLAS=OpenBLAS), same source (bench_gemm.cpp),
# at the ViT shapes. Builds build-bench (Eigen) and build-bench-openblas (OpenBLAS) if needed, runs both, and
# prints one markdown table of GFLOP/s (benchmarks/gemm_table.py).
#
# OpenBLAS picks its kernels from the CPU unless OPENBLAS_CORETYPE names a core. When that variable is set
# (the reference machine's environment sets OPENBLAS_CORETYPE=Haswell: AVX2 kernels), the OpenBLAS build also
# runs a second time without it (its own detection: AVX-512 kernels on AVX-512 CPUs), as a third column.
#
# Usage (from the repository root): benchmarks/compare_gemm.sh
# Knobs: THREADS [2], REPS [3] (repetitions; medians reported), OUT_DIR [build-bench/gemm],
#        IDLE_MAX_BUSY [10], IDLE_TIMEOUT [600] (as in compare_pytorch.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
REPS=${REPS:-3}
OUT_DIR=${OUT_DIR:-build-bench/gemm}
export OMP_NUM_THREADS=$THREADS

source "$(dirname "$(readlink -f "$0")")/idle.sh"  # busy_percent, wait_idle

for cfg in "build-bench Eigen" "build-bench-openblas OpenBLAS"; do
  set -- $cfg
  if [[ ! -f "$1/CMakeCache.txt" ]]; then
    cmake -S . -B "$1" -DCMAKE_BUILD_TYPE=Release -DMINT_BUILD_BENCHMARKS=ON -DMINT_BUILD_TESTS=OFF \
      -DMINT_BUILD_EXAMPLES=OFF -DMINT_BLAS="$2" >/dev/null
  fi
  cmake --build "$1" -j"$(nproc)" --target bench_gemm >/dev/null
done
mkdir -p "$OUT_DIR"
run() {  # run OUT_NAME BUILD_DIR [env words...]
  local name=$1 dir=$2
  shift 2
  wait_idle
  echo "bench_gemm: $name ($dir${*:+, $*})" >&2
  env "$@" "$dir/benchmarks/bench_gemm" --benchmark_repetitions="$REPS" --benchmark_report_aggregates_only=true \
    --benchmark_out="$OUT_DIR/$name.json" --benchmark_out_format=json >"$OUT_DIR/$name.txt" 2>&1
}
run eigen build-bench
run openblas build-bench-openblas
cols=(Eigen="$OUT_DIR/eigen.json" "OpenBLAS (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto})"="$OUT_DIR/openblas.json")
if [[ -n "${OPENBLAS_CORETYPE:-}" ]]; then
  run openblas_autodetect build-bench-openblas -u OPENBLAS_CORETYPE
  cols+=("OpenBLAS (own CPU detection)"="$OUT_DIR/openblas_autodetect.json")
fi
echo "threads: $THREADS; $(lscpu | grep -m1 'Model name' | tr -s ' ')"
python3 benchmarks/gemm_table.py "${cols[@]}"
