#!/usr/bin/env bash
# Scaling of mint-synthesize on this machine (docs/scale.md): the same job with 1 process x 1 thread, mpirun -n 2
# x 1 thread, and 1 process x 2 threads; images/s, the ratio to the first, and checkpointing's share of the
# inversion time (shard write + fsync + rename + hash + manifest rewrite, per batch, from each run's run.json).
#   benchmarks/scale.sh [BUILD_DIR] [extra mint-synthesize options]     (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; shift || true
synth="$build/examples/mint-synthesize"
[[ -x "$synth" ]] || { echo "scale.sh: $synth not built (cmake --build $build --target mint_synthesize)" >&2; exit 2; }
opts=(--images 160 --iterations 200 --batch 10 "$@")
work=$(mktemp -d "${TMPDIR:-/tmp}/mint_scale_XXXXXX")
trap 'rm -rf "$work"' EXIT
field() { sed -n "s/^ *\"$2\": \([-0-9.e+]*\).*/\1/p" "$1/run.json"; }
run() {  # name, then the command prefix
  local name=$1; shift
  "$@" "$synth" "${opts[@]}" --out "$work/$name" >/dev/null 2>&1
  printf '%-28s %8.2f images/s   checkpoint %.3f %% of inversion time\n' "$name" "$(field "$work/$name" images_per_s)" \
    "$(awk -v s="$(field "$work/$name" checkpoint_share)" 'BEGIN { print 100 * s }')"
}
echo "mint-synthesize ${opts[*]} ($(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
OMP_NUM_THREADS=1 run "1 process x 1 thread" env
OMP_NUM_THREADS=1 run "mpirun -n 2 x 1 thread" mpirun -n 2 --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS
OMP_NUM_THREADS=2 run "1 process x 2 threads" env
one=$(field "$work/1 process x 1 thread" images_per_s)
two=$(field "$work/mpirun -n 2 x 1 thread" images_per_s)
thr=$(field "$work/1 process x 2 threads" images_per_s)
awk -v a="$one" -v b="$two" -v c="$thr" 'BEGIN { printf "ratio 2 ranks / 1: %.2f   2 threads / 1: %.2f\n", b / a, c / a }'
for d in "mpirun -n 2 x 1 thread" "1 process x 2 threads"; do
  diff <(cd "$work/1 process x 1 thread" && sha256sum shard-* manifest.json) <(cd "$work/$d" && sha256sum shard-* manifest.json) \
    >/dev/null && echo "$d: the same shard and manifest bytes as 1 process x 1 thread" || echo "$d: DIFFERENT bytes"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
