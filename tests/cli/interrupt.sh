#!/usr/bin/env bash
# SIGINT / SIGTERM stop mint-invert at the next iteration and write what is finished (issue 17): the report
# marked "interrupted", and PRI's images detached before the signal.
#
#   interrupt.sh BINDIR SIGNAL AFTER     send SIGNAL (INT or TERM) once the progress bar shows iteration >= AFTER
#
# With --v 4 --iterations 400 the first detachment is at iteration 100: AFTER 110 expects the batch's first
# detached images (one per trajectory) in the dataset, AFTER 10 expects no image and the report alone.
set -euo pipefail
bin=$(cd "$1" && pwd)/mint-invert
sig=$2 after=$3
[[ -x "$bin" ]] || { echo "interrupt.sh: $bin is not built" >&2; exit 1; }
export OMP_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
batch=2
"$bin" --method pri --v 4 --iterations 400 --batch $batch --out "$T/run" > "$T/stdout" 2> "$T/stderr" &
pid=$!
reached=0
for _ in $(seq 1 3000); do  # at most 30 s
  reached=$({ tr '\r' '\n' < "$T/stderr" | grep -oE '^\[[#.]+\] +[0-9]+/400' | grep -oE '[0-9]+/' | tr -d / |
             tail -1; } 2> /dev/null || true)
  reached=${reached:-0}
  ((reached >= after)) && break
  kill -0 "$pid" 2> /dev/null || break
  sleep 0.01
done
((reached >= after)) || { echo "FAIL: the run never reached iteration $after" >&2; exit 1; }
kill -"$sig" "$pid"
rc=0
wait "$pid" || rc=$?
expected_rc=$((128 + $(kill -l "$sig")))
cat "$T/stdout"
[[ $rc -eq $expected_rc ]] || { echo "FAIL: exit code $rc, expected $expected_rc" >&2; exit 1; }
report=$T/run/report.json
[[ -f "$report" ]] || { echo "FAIL: no report.json after SIG$sig" >&2; exit 1; }
grep -q '"interrupted": true' "$report" || { echo "FAIL: report.json not marked interrupted" >&2; exit 1; }
done_it=$(grep -oE '"iterations_done": [0-9]+' "$report" | grep -oE '[0-9]+$')
images=$(grep -oE '"images_produced": [0-9]+' "$report" | grep -oE '[0-9]+$')
((done_it >= after && done_it < 400)) || { echo "FAIL: iterations_done $done_it" >&2; exit 1; }
if ((after >= 100)); then
  # the detachments finished before the signal: one image per trajectory per detachment point passed
  expect=$((batch * (done_it / 100)))
  [[ $images -eq $expect ]] || { echo "FAIL: $images images written, expected $expect" >&2; exit 1; }
  [[ -f "$T/run/dataset.safetensors" && -f "$T/run/images.png" ]] ||
    { echo "FAIL: dataset or grid missing" >&2; exit 1; }
else
  [[ $images -eq 0 && ! -e "$T/run/dataset.safetensors" ]] ||
    { echo "FAIL: $images images before any detachment" >&2; exit 1; }
fi
echo "SIG$sig at iteration $done_it: exit code $rc, $images finished images written, report marked interrupted"
