#!/bin/bash
# The one command for the GPU figures of docs/performance.md ("CUDA"): on a machine with an NVIDIA GPU, builds
# bench_inversion_cuda (Release, build-cuda/) and runs it and the PyTorch reference (benchmarks/invert_pytorch.py
# --device cuda) on the same GPU, one after the other, then prints mint's and PyTorch's per-iteration times side by
# side. DeiT-Tiny/Small/Base shapes at 224 px, batch 128, DMI / SMI 76 % / PRI v = 4 stages.
#   OUT_DIR (default build-cuda/bench), PYTHON (a python3 with torch and CUDA; default python3),
#   MINT_ARGS (extra bench_inversion_cuda arguments, e.g. "--peak-tflops 67"), CMAKE_ARGS, JOBS (default 4).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT_DIR:-build-cuda/bench}
cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DMINT_WITH_CUDA=ON -DMINT_BUILD_TESTS=OFF \
      -DMINT_BUILD_EXAMPLES=OFF ${CMAKE_ARGS:-} >/dev/null
cmake --build build-cuda -j"${JOBS:-4}" --target bench_inversion_cuda
mkdir -p "$OUT_DIR"
# shellcheck disable=SC2086
build-cuda/bench_inversion_cuda --json "$OUT_DIR/mint.json" ${MINT_ARGS:-} | tee "$OUT_DIR/mint.txt"
# shellcheck disable=SC2086
build-cuda/bench_inversion_cuda --graph --json "$OUT_DIR/mint_graph.json" ${MINT_ARGS:-} | tee "$OUT_DIR/mint_graph.txt"
"${PYTHON:-python3}" benchmarks/invert_pytorch.py --device cuda --models deit_tiny,deit_small,deit_base --batch 128 \
    --iterations-only --warmup 2 --timed 5 --reps 1 --json "$OUT_DIR/torch.json"
"${PYTHON:-python3}" - "$OUT_DIR/mint.json" "$OUT_DIR/mint_graph.json" "$OUT_DIR/torch.json" <<'PY'
import json, sys
mint, graph = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
torch = {r["name"]: r for r in json.load(open(sys.argv[3]))["results"]}
key = lambda r: f"iteration/{r['model']}/{r['method']}/active:{r['active']}"
g = {key(r): r for r in graph["results"] if "active" in r}
print(f"device: {mint['device']}, batch {mint['batch']}")
print(f"{'case':<44} {'mint ms':>8} {'graph ms':>8} {'torch ms':>8} {'torch/mint':>10} {'torch/graph':>11}"
      f" {'mint MiB':>8} {'torch MiB':>9}")
for r in mint["results"]:
    if "active" not in r or key(r) not in torch:
        continue
    t, q = torch[key(r)], g.get(key(r), {"ms": float("nan")})
    print(f"{key(r):<44} {r['ms']:8.2f} {q['ms']:8.2f} {t['ms']:8.2f} {t['ms'] / r['ms']:10.2f} {t['ms'] / q['ms']:11.2f}"
          f" {r['peak_mib']:8.0f} {t['peak_mib']:9.0f}")
PY
