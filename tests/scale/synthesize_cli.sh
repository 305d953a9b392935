#!/usr/bin/env bash
# End-to-end checks of mint-synthesize (issue 16; docs/scale.md), one CTest test per case:
#   synthesize_cli.sh CASE MINT_SYNTHESIZE [MPIEXEC]
#   mpi      mpirun -n 2 gives the same shard files and manifest as one process
#   slices   --shard 0/2 + --shard 1/2 + merge gives the same shard files and manifest as one process
#   sigkill  a run killed with SIGKILL in the middle of a batch, then resumed, equals an uninterrupted run
#   sigterm  SIGTERM abandons the batch in flight (exit 143, manifest kept), the resumed run equals an uninterrupted one
#   changed  a resume with a changed option is refused naming it; --resume without a manifest is refused
#   corrupt  a truncated and a bit-flipped shard are detected by their hash and redone; the result equals the reference
# Every run is tiny (a few iterations of the embedded teacher) and single-threaded per process (OMP_NUM_THREADS=1),
# so each case takes a few seconds. Equality is byte for byte: the SHA-256 of every shard and of the manifest.
set -euo pipefail
case_name=$1 synth=$2 mpiexec=${3:-mpirun}
export OMP_NUM_THREADS=1
work=$(mktemp -d "${TMPDIR:-/tmp}/mint_synthesize_${case_name}_XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL ($case_name): $*" >&2; exit 1; }
# Small and fast: 12 PRI trajectories (48 images) in 6 batches of 2.
opts=(--images 48 --iterations 8 --batch 2 --seed 7)
digest() { (cd "$1" && sha256sum shard-*.safetensors manifest.json); }
same_as_reference() {
  diff <(digest "$work/ref") <(digest "$1") >&2 || fail "$1 differs from the 1-process reference (above)"
}
"$synth" "${opts[@]}" --out "$work/ref" >/dev/null 2>&1 || fail "the reference run failed"
[[ $(ls "$work/ref"/shard-*.safetensors | wc -l) -eq 6 ]] || fail "the reference has not 6 shards"

case "$case_name" in
  mpi)
    "$mpiexec" -n 2 --oversubscribe --allow-run-as-root "$synth" "${opts[@]}" --out "$work/mpi" >"$work/log" 2>&1 \
      || { cat "$work/log" >&2; fail "mpirun -n 2 failed"; }
    grep -q "(rank 1)" "$work/log" || { cat "$work/log" >&2; fail "rank 1 ran no batch"; }
    same_as_reference "$work/mpi" ;;
  slices)
    "$synth" "${opts[@]}" --out "$work/a" --shard 0/2 >/dev/null 2>&1 || fail "--shard 0/2 failed"
    "$synth" "${opts[@]}" --out "$work/b" --shard 1/2 >/dev/null 2>&1 || fail "--shard 1/2 failed"
    if "$synth" merge --out "$work/m" "$work/a" >"$work/log" 2>&1; then fail "merging one slice of two succeeded"; fi
    grep -q "batches are in no manifest" "$work/log" || { cat "$work/log" >&2; fail "no missing-batches message"; }
    "$synth" merge --out "$work/m" "$work/a" "$work/b" >/dev/null 2>&1 || fail "merge failed"
    same_as_reference "$work/m" ;;
  sigkill|sigterm)
    # slower batches (more iterations) so that the signal lands inside one
    slow=(--images 24 --iterations 300 --batch 2 --seed 7)
    "$synth" "${slow[@]}" --out "$work/ref2" >/dev/null 2>&1 || fail "the slow reference run failed"
    "$synth" "${slow[@]}" --out "$work/run" >"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do [[ -e "$work/run/shard-000001.safetensors" ]] && break; sleep 0.01; done
    [[ -e "$work/run/shard-000001.safetensors" ]] || fail "no shard appeared"
    signal=KILL; [[ $case_name == sigterm ]] && signal=TERM
    kill -s "$signal" "$pid"
    rc=0; wait "$pid" || rc=$?
    [[ $rc -ne 0 ]] || fail "the run finished before the signal: make its batches slower"
    if [[ $case_name == sigterm ]]; then
      [[ $rc -eq 143 ]] || { cat "$work/log" >&2; fail "SIGTERM: exit status $rc, expected 143"; }
      grep -q "abandoned" "$work/log" || { cat "$work/log" >&2; fail "SIGTERM: no 'abandoned' message"; }
      ls "$work/run"/.shard-* >/dev/null 2>&1 && fail "SIGTERM left a temporary file"
    fi
    grep -q '"complete": false' "$work/run/manifest.json" || fail "the killed run's manifest says complete"
    "$synth" "${slow[@]}" --out "$work/run" >"$work/log2" 2>&1 || { cat "$work/log2" >&2; fail "the resume failed"; }
    grep -q "(resumed)" "$work/log2" || fail "the second run did not resume"
    diff <(digest "$work/ref2") <(digest "$work/run") >&2 || fail "the resumed run differs from an uninterrupted one"
    ;;
  changed)
    out=$("$synth" --images 48 --iterations 9 --batch 2 --seed 7 --out "$work/ref" 2>&1) &&
      fail "a changed option was accepted"
    grep -q -- "--iterations (8 vs 9)" <<<"$out" || { echo "$out" >&2; fail "the refusal does not name --iterations"; }
    out=$("$synth" "${opts[@]}" --method dmi --out "$work/ref" 2>&1) && fail "a changed --method was accepted"
    grep -q -- "--method" <<<"$out" || { echo "$out" >&2; fail "the refusal does not name --method"; }
    out=$("$synth" "${opts[@]}" --resume --out "$work/none" 2>&1) && fail "--resume without a manifest was accepted"
    grep -q "nothing to resume" <<<"$out" || { echo "$out" >&2; fail "no 'nothing to resume' message"; }
    same_as_reference "$work/ref" ;;  # the refused runs left the folder alone
  corrupt)
    truncate -s 100 "$work/ref/shard-000001.safetensors"
    # flip one byte in the middle of shard 4 (its size is unchanged)
    f="$work/ref/shard-000004.safetensors"; n=$(( $(stat -c %s "$f") / 2 ))
    b=$(od -An -tu1 -j "$n" -N1 "$f" | tr -d ' '); printf "$(printf '\\%03o' $(( (b + 1) % 256 )))" |
      dd of="$f" bs=1 seek="$n" conv=notrunc status=none
    "$synth" "${opts[@]}" --out "$work/ref" >"$work/log" 2>&1 || { cat "$work/log" >&2; fail "the resume failed"; }
    [[ $(grep -c "will be redone" "$work/log") -eq 2 ]] || { cat "$work/log" >&2; fail "not both bad shards redone"; }
    grep -q "2 batches to run" "$work/log" || { cat "$work/log" >&2; fail "more than the 2 bad batches were rerun"; }
    "$synth" "${opts[@]}" --out "$work/fresh" >/dev/null 2>&1 || fail "the fresh run failed"
    diff <(digest "$work/fresh") <(digest "$work/ref") >&2 || fail "the repaired folder differs from a fresh run" ;;
  *) fail "unknown case" ;;
esac
echo "ok: $case_name"
