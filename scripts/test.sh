#!/usr/bin/env bash
# The test command: install what is missing, build the tests and examples with -j2, run every test; where nvcc
# exists, also build the CUDA tests (build-cuda/, -j2) and run them (they skip without a GPU).
#   scripts/test.sh [--sanitize]   --sanitize: a separate ASan + UBSan build of the same tests (build-asan/),
#                                  compiled with clang, so one build checks both memory safety and that mint
#                                  builds and passes with a second compiler (the normal build is GCC)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
dir=build; flags=(-DCMAKE_BUILD_TYPE=Release -DMINT_UNITY_TESTS=ON)
if [[ "${1:-}" == "--sanitize" ]]; then
  dir=build-asan
  # -O1 keeps the sanitized DeiT-Tiny parity test fast enough; no -march=native so the reports are portable.
  # -g1 (line tables: the reports still name file and line) compiles about 23 % faster than -g (measured on
  # test_inverter.cpp: 61 s against 79 s of compiler time).
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DMINT_SANITIZE=ON -DMINT_NATIVE=OFF
         -DMINT_BUILD_EXAMPLES=OFF -DMINT_UNITY_TESTS=ON)
  clang=$(command -v clang++ || command -v clang++-14 || true)
  [[ -n "$clang" ]] || { echo "test.sh: clang++ not found (scripts/setup.sh installs Debian's clang)" >&2; exit 1; }
  flags+=(-DCMAKE_CXX_COMPILER="$clang")
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
cmake -S . -B "$dir" -DMINT_BUILD_TESTS=ON "${flags[@]}" >/dev/null
cmake --build "$dir" -j2
# ctest runs 2 test processes at once; each gets nproc/2 OpenMP threads, so the cores are not oversubscribed
# (Eigen's threads spin-wait: two 2-thread processes on 2 cores ran a test 3-4x slower). Tests that exercise
# the parallel paths set their thread count themselves (test_rng, test_conv, ...).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))}
(cd "$dir" && ctest -j2 --output-on-failure)

# The CUDA backend: where nvcc exists, build the CUDA tests in their own tree (so a CUDA compile error fails the
# run) and run them; without a GPU each prints "SKIPPED: no usable CUDA device" and CTest counts it as skipped.
# -j2: two nvcc at a time (one took about 1 GB at peak, so two fit a 24 GiB machine easily; at -j1 the five test
# files took 256 s of a CI run). Not repeated in the --sanitize run.
if [[ "$dir" == build ]]; then
  if command -v nvcc >/dev/null 2>&1 || [[ -x /usr/local/cuda/bin/nvcc ]]; then
    cuda_start=$SECONDS
    cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DMINT_BUILD_TESTS=ON -DMINT_BUILD_EXAMPLES=OFF \
          -DMINT_WITH_CUDA=ON >/dev/null
    cmake --build build-cuda -j2 --target mint_cuda_tests
    echo "test.sh: CUDA configure and build (-j2) took $((SECONDS - cuda_start)) s"
    (cd build-cuda && ctest -L cuda --output-on-failure)
    echo "test.sh: CUDA build and tests took $((SECONDS - cuda_start)) s"
  else
    echo "test.sh: nvcc not found (PATH or /usr/local/cuda/bin): CUDA build and tests skipped"
  fi
fi
