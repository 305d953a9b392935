#!/usr/bin/env bash
# mint-invert killed with SIGKILL at a random moment, 20 times: its output folder must always hold either the
# previous complete set or the new complete set (issue 17), never a truncated or mixed one.
#
#   kill_outputs.sh BINDIR
#
# The runs alternate between two seeds whose outputs are known (reference runs, not killed), so "complete set" is
# exact: images.png, dataset.safetensors and the image folder byte-identical to one seed's reference, report.json
# of that same seed, report.html complete. A kill lands anywhere in a run (model load, inversion, writing,
# commit): the delay is uniform over 1.3x one run's measured duration. OMP_NUM_THREADS=1 keeps the outputs bit-identical between runs.
set -euo pipefail
bin=$(cd "$1" && pwd)/mint-invert
[[ -x "$bin" ]] || { echo "kill_outputs.sh: $bin is not built" >&2; exit 1; }
export OMP_NUM_THREADS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
args=(--method pri --v 2 --iterations 30 --batch 2)

# images.png, the dataset and every file of the image folder (report.html holds times: checked for its end below)
digest() {
  (cd "$1" && sha256sum images.png dataset.safetensors $(find images -type f | sort) | awk '{print $1}' | tr '\n' ' ')
}
# The seed whose complete set folder $1 holds, or a description of what is wrong with it.
which_set() {
  local d=$1 names
  names=$(cd "$d" && ls -A | sort | tr '\n' ' ')
  [[ "$names" == ".mint-output dataset.safetensors images images.png report.html report.json " ]] ||
    { echo "files: $names"; return; }
  local h
  h=$(digest "$d")
  for s in 1 2; do
    if [[ "$h" == "${ref[$s]}" ]] && grep -q "\"seed\": $s," "$d/report.json" &&
       [[ $(tail -c 2 "$d/report.json") == "}" ]] && [[ $(tail -c 8 "$d/report.html") == "</html>" ]]; then
      echo "$s"
      return
    fi
  done
  echo "a mixed or truncated set (digest $h)"
}

declare -A ref
for s in 1 2; do
  "$bin" "${args[@]}" --seed "$s" --out "$T/ref$s" > /dev/null 2>&1
  ref[$s]=$(digest "$T/ref$s")
done
[[ "${ref[1]}" != "${ref[2]}" ]] || { echo "kill_outputs.sh: the two seeds give the same outputs" >&2; exit 1; }

out=$T/run
start=$(date +%s%N)
"$bin" "${args[@]}" --seed 1 --out "$out" > /dev/null 2>&1
run_ms=$((($(date +%s%N) - start) / 1000000))
prev=1 kept=0 replaced=0
for i in $(seq 1 20); do
  new=$((3 - prev))
  delay_ms=$((RANDOM % (run_ms * 13 / 10 + 1)))
  "$bin" "${args[@]}" --seed "$new" --out "$out" > /dev/null 2>&1 &
  pid=$!
  sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
  kill -KILL "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  got=$(which_set "$out")
  if [[ "$got" == "$prev" ]]; then
    kept=$((kept + 1))
  elif [[ "$got" == "$new" ]]; then
    replaced=$((replaced + 1))
  else
    echo "FAIL: kill $i after $delay_ms ms (run ${run_ms} ms, seed $prev -> $new): $out holds $got" >&2
    exit 1
  fi
  prev=$got
done
stale=$(find "$T" -maxdepth 1 -name '.run.tmp.*' | wc -l)
echo "20 kills over a ${run_ms} ms run: $kept left the previous set, $replaced the new set;" \
     "$stale staging folder(s) left"
# A killed run may leave its own staging folder; the next run removes it, so at most one remains.
[[ $stale -le 1 ]] || { echo "FAIL: $stale staging folders of killed runs accumulated" >&2; exit 1; }
