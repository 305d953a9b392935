#!/usr/bin/env bash
# Builds the libFuzzer targets (every fuzz/fuzz_<name>.cpp, clang, ASan + UBSan; build-fuzz/) and runs each for a
# bounded time from its committed seeds fuzz/corpus/<name>/. Any finding (a crash, a sanitizer report, an
# exception other than mint::Error, an input slower than 10 s, a single allocation above 512 MiB, more than
# 2 GiB resident) fails the run; the input that caused it is kept in build-fuzz/findings/.
#   scripts/fuzz.sh [--time SECONDS] [NAME...]   default: 20 s per target, every target
# Runs one target per core at a time; prints one line per target (executions, seconds, result) and the totals.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=20
names=()
while (($#)); do
  case "$1" in
    --time) seconds="${2:?--time needs a number of seconds}"; shift 2 ;;
    --time=*) seconds="${1#--time=}"; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option '$1' (known: --time SECONDS)" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: --time must be a positive whole number of seconds, got '$seconds'" >&2
  exit 2
fi
if ((${#names[@]} == 0)); then
  for src in fuzz/fuzz_*.cpp; do n=$(basename "$src" .cpp); names+=("${n#fuzz_}"); done
fi
for n in "${names[@]}"; do
  [[ -f "fuzz/fuzz_$n.cpp" ]] || { echo "fuzz.sh: no target fuzz/fuzz_$n.cpp" >&2; exit 2; }
  [[ -d "fuzz/corpus/$n" ]] || { echo "fuzz.sh: no seed corpus fuzz/corpus/$n/" >&2; exit 2; }
done

bash scripts/setup.sh
cxx=$(command -v clang++ || command -v clang++-14 || true)
[[ -n "$cxx" ]] || { echo "fuzz.sh: clang++ not found (Debian: apt-get install clang)" >&2; exit 1; }
build_start=$SECONDS
# -O1 -g1 as the sanitizer build; no -march=native, so a finding replays on another machine.
CXX="$cxx" cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DMINT_FUZZ=ON -DMINT_BUILD_TESTS=OFF -DMINT_BUILD_EXAMPLES=OFF -DMINT_NATIVE=OFF -DMINT_WERROR=ON >/dev/null
targets=()
for n in "${names[@]}"; do targets+=("fuzz_$n"); done
cmake --build build-fuzz -j2 --target "${targets[@]}"
echo "fuzz.sh: build took $((SECONDS - build_start)) s"

mkdir -p build-fuzz/findings build-fuzz/logs
# One target per core at a time (each is one process on one thread); results are read back in name order.
parallel=$(nproc)
fuzz_one() {
  local n=$1 work="build-fuzz/corpus/$1" log="build-fuzz/logs/$1.log" start=$SECONDS rc=0
  mkdir -p "$work"  # new inputs go here; the committed seeds are only read
  # One thread: Eigen and OpenMP threads would only add noise to a single-input run.
  OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1 "build-fuzz/fuzz/fuzz_$n" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 -artifact_prefix="build-fuzz/findings/$n-" \
    "$work" "fuzz/corpus/$n" >"$log" 2>&1 || rc=$?
  echo "$rc $((SECONDS - start))" >"build-fuzz/logs/$n.rc"
}
run_start=$SECONDS
for n in "${names[@]}"; do
  rm -f "build-fuzz/logs/$n.rc"
  while (($(jobs -rp | wc -l) >= parallel)); do wait -n || true; done
  fuzz_one "$n" &
done
wait
failed=()
total_runs=0
printf '%-20s %12s %8s  %s\n' target executions seconds result
for n in "${names[@]}"; do
  log="build-fuzz/logs/$n.log"
  read -r rc took <"build-fuzz/logs/$n.rc"
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  runs=${runs:-0}
  total_runs=$((total_runs + runs))
  if ((rc == 0)); then
    result=ok
  else
    result="FINDING (rc $rc, $log, inputs in build-fuzz/findings/)"
    failed+=("$n")
    grep -m3 -E 'ERROR|WARNING|runtime error|terminate|SUMMARY' "$log" >&2 || true
  fi
  printf '%-20s %12s %8s  %s\n' "$n" "$runs" "$took" "$result"
done
total_seconds=$((SECONDS - run_start))
echo "fuzz.sh: ${#names[@]} targets ($parallel at a time), $total_runs executions in $total_seconds s, ${#failed[@]} with findings"
if ((${#failed[@]})); then
  echo "fuzz.sh: findings in: ${failed[*]}" >&2
  exit 1
fi
