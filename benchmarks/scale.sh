#!/usr/bin/env bash
# Scaling of mint-synthesize on this machine (docs/scale.md): the same job with 1 process x 1 thread, mpirun -n 2
# x 1 thread, and 1 process x 2 threads; images/s, the ratio to the first, and checkpointing's share of the
# inversion time (shard write + fsync + rename + hash + manifest rewrite, per batch, from each run's run.json).
#   benchmarks/scale.sh [BUILD_DIR] [mint-synthesize options]   (default: build; the options replace the default job)
# MINT_SCALE_THREADS=0 leaves out the 1 process x 2 threads run (on a machine loaded by other work its spinning
# OpenMP threads slow it down by an order of magnitude: docs/scale.md).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; shift || true
synth="$build/examples/mint-synthesize"
[[ -x "$synth" ]] || { echo "scale.sh: $synth not built (cmake --build $build --target mint_synthesize)" >&2; exit 2; }
opts=(--images 96 --iterations 200 --batch 3)
(($#)) && opts=("$@")
work=$(mktemp -d "${TMPDIR:-/tmp}/mint_scale_XXXXXX")
trap 'rm -rf "$work"' EXIT
field() { sed -n "s/^ *\"$2\": \([-0-9.e+]*\).*/\1/p" "$1/run.json"; }
run() {  # name, then the command prefix
  local name=$1; shift
  "$@" "$synth" "${opts[@]}" --out "$work/$name" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
  local d="$work/$name"
  printf '%-26s %7.2f images/s   checkpoint %6.1f ms per batch = %.3f %% of inversion time\n' "$name" \
    "$(field "$d" images_per_s)" \
    "$(awk -v w="$(field "$d" shard_write_seconds)" -v m="$(field "$d" manifest_write_seconds)" \
       -v n="$(field "$d" batches_run)" 'BEGIN { print 1000 * (w + m) / n }')" \
    "$(awk -v s="$(field "$d" checkpoint_share)" 'BEGIN { print 100 * s }')"
}
echo "mint-synthesize ${opts[*]} ($(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
OMP_NUM_THREADS=1 run "1 process x 1 thread" env
OMP_NUM_THREADS=1 run "mpirun -n 2 x 1 thread" mpirun -n 2 --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS
runs=("mpirun -n 2 x 1 thread")
if [[ ${MINT_SCALE_THREADS:-1} != 0 ]]; then
  OMP_NUM_THREADS=2 run "1 process x 2 threads" env
  runs+=("1 process x 2 threads")
fi
one=$(field "$work/1 process x 1 thread" images_per_s)
for d in "${runs[@]}"; do
  awk -v a="$one" -v b="$(field "$work/$d" images_per_s)" -v n="$d" \
    'BEGIN { printf "ratio %s / 1 x 1: %.2f\n", n, b / a }'
done
digest() { (cd "$1" && sha256sum shard-* manifest.json); }
for d in "${runs[@]}"; do
  if diff <(digest "$work/1 process x 1 thread") <(digest "$work/$d") >/dev/null; then
    echo "$d: the same shard and manifest bytes as 1 process x 1 thread"
  else
    echo "$d: DIFFERENT bytes"
  fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
