# Sourced by the mint-experiment result scripts (results.sh, results_official.sh, results_deit_teacher.sh): one
# place for what they share. From the repository root: sets OMP_NUM_THREADS=1, CACHE, BACKBONE, BIN, OFFICIAL_SETS; unless SKIP_BUILD is set, installs
# what a fresh machine lacks (scripts/setup.sh) and builds mint-experiment and mint-train-teacher (build/, Release,
# those two targets only). ensure_backbone pre-trains the 5-class student backbone once (classes 0-4, real images).
export OMP_NUM_THREADS=1
CACHE=out/experiment/cache
BACKBONE=$CACHE/backbone_classes0-4.safetensors
if [[ -z "${SKIP_BUILD:-}" ]]; then
  bash scripts/setup.sh  # what a fresh machine lacks (Eigen, stb, the Fashion-MNIST package, ...)
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMINT_BUILD_EXAMPLES=ON >/dev/null  # only the targets below are built
  nice -n 10 cmake --build build -j1 --target mint_experiment mint_train_teacher
fi
BIN=${BIN:-build/examples}
# The official-code study's sets (docs/results_official.md): every script that reads them passes these options, so
# all of them name the same cached sets (a drift in one would silently invert new ones).
OFFICIAL_SETS=(--preset official --tv 1e-4 --iterations 2000 --images 280 --inv-batch 70)
ensure_backbone() {
  mkdir -p "$CACHE"
  if [[ ! -f "$BACKBONE" ]]; then
    nice -n 10 "$BIN/mint-train-teacher" --classes 0,1,2,3,4 --epochs 4 --flip 1 --threads 1 --out "$CACHE" \
      --name backbone_classes0-4
  fi
}
