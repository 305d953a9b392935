#!/usr/bin/env bash
# mint-attack-gradients killed with SIGKILL after it saved its state, then run again with the same command: the
# rerun resumes and writes the bytes of a run that was never killed (grid PNG, PSNRs, final loss); the state file
# is gone afterwards. A state left by other options, a file that is not a state, and --resume without a state end
# with exit code 2 and a message naming the problem.
#
#   attack_resume.sh BINDIR
set -euo pipefail
bin=$(cd "$1" && pwd)/mint-attack-gradients
[[ -x "$bin" ]] || { echo "attack_resume.sh: $bin is not built" >&2; exit 1; }
export OMP_NUM_THREADS=1  # bit-identical runs
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# two seeds with registration every 7 iterations: a resume must carry the consensus over
args=(--batch 2 --iterations 200 --seeds 2 --registration 0.5 --register-every 7 --checkpoint-every 20 --name r)
fail() { echo "attack_resume.sh: $*" >&2; exit 1; }

"$bin" "${args[@]}" --out "$T/ref" >/dev/null
"$bin" "${args[@]}" --out "$T/run" >/dev/null &
pid=$!
for _ in $(seq 1 600); do [[ -f "$T/run/r.state.safetensors" ]] && break; sleep 0.05; done
[[ -f "$T/run/r.state.safetensors" ]] || fail "no state file after 30 s"
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
[[ -f "$T/run/r.json" ]] && fail "the run finished before it was killed: nothing was resumed (make it longer)"
"$bin" "${args[@]}" --out "$T/run" >"$T/resume.log"
grep -q "resuming after iteration" "$T/resume.log" || fail "the rerun did not resume: $(cat "$T/resume.log")"
cmp -s "$T/ref/r.png" "$T/run/r.png" || fail "the resumed grid differs from the uninterrupted run's"
/usr/bin/python3 - "$T/ref/r.json" "$T/run/r.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for k in ("final_loss", "final_distance"):
    assert a[k] == b[k], (k, a[k], b[k])
assert a["recovered"]["psnr_per_image"] == b["recovered"]["psnr_per_image"]
assert a["resumed_after"] == 0 and b["resumed_after"] > 0, (a["resumed_after"], b["resumed_after"])
PY
[[ -f "$T/run/r.state.safetensors" ]] && fail "the state file outlived the finished run"

# refusals (exit code 2, the problem named)
expect2() {
  local want=$1 rc=0
  shift
  "$bin" "$@" >/dev/null 2>"$T/err" || rc=$?
  [[ $rc -eq 2 ]] || fail "exit code $rc (expected 2) for: $* ($(cat "$T/err"))"
  grep -q -- "$want" "$T/err" || fail "no '$want' in: $(cat "$T/err")"
}
expect2 "nothing to resume" "${args[@]}" --out "$T/none" --resume
"$bin" "${args[@]}" --out "$T/other" >/dev/null &
pid=$!
for _ in $(seq 1 600); do [[ -f "$T/other/r.state.safetensors" ]] && break; sleep 0.05; done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
expect2 'first difference: lr: saved 0.1, now 0.05' "${args[@]}" --out "$T/other" --lr 0.05
printf 'not a state' >"$T/other/r.state.safetensors"
expect2 "r.state.safetensors" "${args[@]}" --out "$T/other"
echo "attack_resume.sh: killed, resumed to the same bytes; three bad states refused"
