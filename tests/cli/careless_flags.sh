#!/usr/bin/env bash
# Careless flags: the one table of bad command lines tried on mint's CLIs (issue 17), each with the error message it
# must give. Every row must end with exit code 2, a message on stderr matching the row's pattern (naming the
# option or file), no crash, no output written, and quickly: rows carry a huge --iterations or --epochs where the
# old code validated only after the run, so a late check shows as a timeout (MINT_CLI_TIMEOUT seconds, default 60).
#
#   careless_flags.sh BINDIR list         the row names (tests/cli/CMakeLists.txt: one CTest test per row)
#   careless_flags.sh BINDIR run NAME     runs one row; exit 0 when it behaves
#   careless_flags.sh BINDIR markdown     runs every row and prints the table of docs/reliability.md
#
# A row: row NAME 'extended regex the stderr must match' PROGRAM ARGS... ($T: a scratch folder with the fixtures
# made by setup(); $OUT: an output path that must not exist afterwards; $MODEL: the embedded teacher; $DATA: a
# small synthetic data set).
set -uo pipefail
bindir=$(cd "$1" && pwd) mode=$2 only=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
MODEL=$here/../../models/fmnist_vit.safetensors

rows() {
  # mint-invert: silent wrong results from flags
  row pri-iterations-below-v 'needs --iterations >= 49' mint-invert --v 49 --iterations 20 --out "$OUT"
  row pri-ratio-ignored '--ratio applies to --method smi only' mint-invert --method pri --ratio 0.5 --out "$OUT"
  row pri-prune-ignored '--prune applies to --method smi only' mint-invert --prune 10,20 --out "$OUT"
  row dmi-v-ignored '--v applies to --method pri only' mint-invert --method dmi --v 7 --out "$OUT"
  row dmi-selector-ignored '--method dmi never ranks patches' mint-invert --method dmi --selector random --out "$OUT"
  row prune-negative "--prune: '-5' is outside" mint-invert --method smi --prune -5,500 --out "$OUT"
  row prune-not-a-number '--prune: expects a whole number' mint-invert --method smi --prune abc --out "$OUT"
  row prune-after-last-iteration '--prune 500 is after the last iteration' \
      mint-invert --method smi --prune 50,500 --iterations 400 --out "$OUT"
  row prune-not-increasing '--prune must be increasing, got 100 then 50' \
      mint-invert --method smi --prune 100,50 --out "$OUT"
  row ratio-one '--ratio 1 must be < 1' mint-invert --method smi --ratio 1 --out "$OUT"
  row v-exceeds-patches "--v 50 exceeds the model's 49 patches" mint-invert --v 50 --out "$OUT"
  row seed-negative "--seed: expects a whole number .* got '-1'" mint-invert --seed -1 --out "$OUT"
  row seed-overflow "--seed: '18446744073709551616' is outside" mint-invert --seed 18446744073709551616 --out "$OUT"
  row lr-negative "--lr: '-1' is outside" mint-invert --lr -1 --out "$OUT"
  row lr-nan "--lr: expects a finite number" mint-invert --lr nan --out "$OUT"
  row tv-negative "--tv: '-1' is outside" mint-invert --tv -1 --out "$OUT"
  row batch-zero "--batch: '0' is outside" mint-invert --batch 0 --out "$OUT"
  row iterations-trailing "--iterations: expects a whole number .* got '20x'" mint-invert --iterations 20x --out "$OUT"
  row method-unknown '--method: xyz not in' mint-invert --method xyz --out "$OUT"
  row option-unknown 'not expected.*--bogus' mint-invert --bogus 1 --out "$OUT"
  row option-without-value '--batch: 1 required' mint-invert --out "$OUT" --batch
  row model-missing '--model: .*/nonexistent.safetensors' mint-invert --model /nonexistent.safetensors --out "$OUT"
  # mint-invert: recipe and output folder checked before the run (the old code ran the whole inversion first)
  row recipe-missing '--recipe: .*/nonexistent/recipe.json' \
      mint-invert --recipe /nonexistent/recipe.json --iterations 10000000 --out "$OUT"
  row recipe-malformed "model config '.*bad.json': not valid JSON" \
      mint-invert --recipe "$T/bad.json" --iterations 10000000 --out "$OUT"
  row recipe-contradicts-weights "contra.json': model.classes = 7 but the weights .* have 10 classes" \
      mint-invert --recipe "$T/contra.json" --iterations 10000000 --out "$OUT"
  row recipe-mean-not-a-number '"normalization.mean" must be a number' \
      mint-invert --recipe "$T/strmean.json" --iterations 10000000 --out "$OUT"
  row recipe-std-zero 'std\[0\] = 0 must be finite and > 0' \
      mint-invert --recipe "$T/zerostd.json" --iterations 10000000 --out "$OUT"
  row out-is-a-file "output folder '.*bad.json' exists and is not a folder" \
      mint-invert --iterations 10000000 --out "$T/bad.json"
  row out-foreign-folder 'holds files that mint did not write' mint-invert --iterations 10000000 --out "$T"
  row out-unwritable "output folder '/proc/mint-out'" mint-invert --iterations 10000000 --out /proc/mint-out
  # mint-invert, mint-synthesize: --policies files the registry refuses (before any work)
  row policies-missing '--policies: .*/nonexistent/p.json' \
      mint-invert --policies /nonexistent/p.json --iterations 10000000 --out "$OUT"
  row policies-malformed "--policies: '.*bad.json' is not valid JSON" \
      mint-invert --policies "$T/bad.json" --iterations 10000000 --out "$OUT"
  row policies-unknown-key "pol_key.json': unknown key 'schedul'" \
      mint-invert --policies "$T/pol_key.json" --iterations 10000000 --out "$OUT"
  row policies-ratio-range "schedule 'smi': ratio = 1 is outside \[0, 1\)" \
      mint-invert --policies "$T/pol_ratio.json" --iterations 10000000 --out "$OUT"
  row policies-wrong-type "schedule 'pri': v = \"4\" must be a JSON integer" \
      mint-invert --policies "$T/pol_type.json" --iterations 10000000 --out "$OUT"
  row policies-unknown-param "selector 'high': unknown parameter 'k'" \
      mint-invert --policies "$T/pol_param.json" --iterations 10000000 --out "$OUT"
  row policies-and-option "--v: --policies '.*pol_type.json' sets the schedule" \
      mint-invert --policies "$T/pol_type.json" --v 3 --iterations 10000000 --out "$OUT"
  row policies-official-prior "\(--preset official\): prior: expected 'tv_official', got 'sum'" \
      mint-invert --preset official --policies "$T/pol_sum.json" --iterations 10000000 --out "$OUT"
  row synthesize-policies-ratio "schedule 'smi': ratio = 1 is outside \[0, 1\)" \
      mint-synthesize --images 10 --policies "$T/pol_ratio.json" --iterations 10000000 --out "$OUT"
  # mint-inspect
  row inspect-batch-trailing "--batch: expects a whole number .* got '3abc'" mint-inspect --batch 3abc --out "$OUT"
  row inspect-empty-idx "--data: '.*emptyidx/t10k-images-idx3-ubyte.gz' holds no images" \
      mint-inspect --data "$T/emptyidx" --out "$OUT"
  row inspect-keep-too-many "--keep 50 exceeds the model's 49 patches" mint-inspect --keep 50 --out "$OUT"
  row inspect-heads-and-arch '--heads and --arch both give the head count' \
      mint-inspect --heads 4 --arch deit_tiny_patch16_224 --out "$OUT"
  row inspect-std-zero "--std: '0' is outside" mint-inspect --std 0 --out "$OUT"
  # mint-distill
  row distill-batch-zero "--batch: '0' is outside" mint-distill --data "$DATA" --batch 0 --out "$OUT"
  row distill-option-unknown 'not expected.*--bogus' mint-distill --data "$DATA" --bogus 1 --out "$OUT"
  row distill-data-required '--data is required' mint-distill --out "$OUT"
  row distill-out-folder-missing "--out: the folder of '/nonexistent/s.safetensors' does not exist" \
      mint-distill --data "$DATA" --epochs 100000 --out /nonexistent/s.safetensors
  row distill-dim-with-student '--dim shapes a new student' \
      mint-distill --data "$DATA" --student "$MODEL" --dim 64 --out "$OUT"
  row distill-heads-not-dividing '--heads 5 must divide --dim 32' mint-distill --data "$DATA" --heads 5 --out "$OUT"
  row distill-classes-unknown '--classes: 12 is not a class of the teacher' \
      mint-distill --data "$DATA" --classes 3,12 --out "$OUT"
  row distill-data-not-a-dataset "no tensor 'images'|images" mint-distill --data "$MODEL" --out "$OUT"
  # mint-attack-gradients
  row attack-batch-beyond-test-set '--first 9999 \+ --batch 8 exceeds the 10000 test images' \
      mint-attack-gradients --first 9999 --batch 8 --out "$OUT"
  row attack-registration-one-seed '--registration pulls the seeds together: it needs --seeds > 1' \
      mint-attack-gradients --registration 0.1 --out "$OUT"
  row attack-filter-reversed '--filter blocks:3-1' mint-attack-gradients --filter blocks:3-1 --out "$OUT"
  row attack-labels-unknown '--labels: guess not in' mint-attack-gradients --labels guess --out "$OUT"
  row attack-subspace-images-alone '--subspace-images is used only with --subspace > 0' \
      mint-attack-gradients --subspace-images 100 --out "$OUT"
  row attack-start-std-noise '--start-std adds noise to a start: it needs --init mean, class-mean or truth' \
      mint-attack-gradients --start-std 0.5 --out "$OUT"
  row attack-subspace-too-large "--subspace: '5000' is outside \[0, 4096\]" mint-attack-gradients --subspace 5000 --out "$OUT"
  # mint-train-teacher, mint-train-cnn
  row train-teacher-heads-not-dividing '--heads 4 must divide --dim 30' \
      mint-train-teacher --dim 30 --heads 4 --epochs 100000 --out "$OUT"
  row train-teacher-min-lr '--min-lr 1 must be <= --lr 0.1' \
      mint-train-teacher --min-lr 1 --lr 0.1 --epochs 100000 --out "$OUT"
  row train-teacher-classes "--classes: '10' is outside" mint-train-teacher --classes 0,10 --out "$OUT"
  row train-cnn-batch-one "--batch: '1' is outside" mint-train-cnn --batch 1 --out "$OUT"
  row train-cnn-momentum-adamw '--momentum applies to --opt sgd only' \
      mint-train-cnn --opt adamw --momentum 0.5 --epochs 100000 --out "$OUT"
  # mint-invert-features, mint-dci-results, mint-experiment
  row invert-features-modules-required '--modules is required' mint-invert-features --out "$OUT"
  row invert-features-split-unknown '--split: layer9 not in' \
      mint-invert-features --modules "$MODEL" --split layer9 --out "$OUT"
  row invert-features-index-and-png '--index and --png both choose the image' \
      mint-invert-features --modules "$MODEL" --index 3 --png "$T/bad.json" --out "$OUT"
  row dci-sizes-too-small "--sizes: '1' is outside" mint-dci-results --sizes 1,1000 --out "$OUT" --docs "$OUT"
  row experiment-backbone-required '--backbone is required' mint-experiment --out "$OUT"
  row experiment-method-unknown "--methods: unknown method 'pri9'" \
      mint-experiment --backbone "$MODEL" --methods dmi,pri9 --out "$OUT" --cache "$OUT"
  row experiment-efficiency-ignores-epochs '--epochs: --efficiency-only 1 measures the inversions of seed 0 only' \
      mint-experiment --efficiency-only 1 --epochs 3 --out "$OUT"
  row experiment-bn-prior-paper '--bn-prior 0.1: the borrowed CNN.s BN prior is a lever of the official preset' \
      mint-experiment --backbone "$MODEL" --bn-prior 0.1 --out "$OUT" --cache "$OUT"
  row experiment-bn-cnn-not-a-resnet "--bn-cnn .*fmnist_vit.safetensors\): missing key 'conv1.weight'" \
      mint-experiment --backbone "$MODEL" --preset official --bn-prior 0.1 --bn-cnn "$MODEL" --out "$OUT" --cache "$OUT"
}

# The fixtures the rows use, in a fresh scratch folder.
setup() {
  T=$(mktemp -d)
  OUT=$T/out
  echo '{"normalization": ' > "$T/bad.json"
  echo '{"model": {"classes": 7}}' > "$T/contra.json"
  echo '{"normalization": {"mean": "x", "std": 0.35}}' > "$T/strmean.json"
  echo '{"normalization": {"mean": 0.28, "std": 0}}' > "$T/zerostd.json"
  echo '{"schedul": {"name": "smi"}}' > "$T/pol_key.json"
  echo '{"schedule": {"name": "smi", "params": {"ratio": 1}}}' > "$T/pol_ratio.json"
  echo '{"schedule": {"name": "pri", "params": {"v": "4"}}}' > "$T/pol_type.json"
  echo '{"selector": {"name": "high", "params": {"k": 1}}}' > "$T/pol_param.json"
  echo '{"prior": {"name": "sum", "params": {"terms": [{"name": "tv"}, {"name": "l2"}]}}}' > "$T/pol_sum.json"
  mkdir -p "$T/emptyidx"
  printf '\x00\x00\x08\x03\x00\x00\x00\x00\x00\x00\x00\x1c\x00\x00\x00\x1c' |  # 0 images of 28 x 28
    gzip > "$T/emptyidx/t10k-images-idx3-ubyte.gz"
  printf '\x00\x00\x08\x01\x00\x00\x00\x00' | gzip > "$T/emptyidx/t10k-labels-idx1-ubyte.gz"
  DATA=$T/synthetic/dataset.safetensors
  if [[ "$mode" != list ]]; then
    OMP_NUM_THREADS=1 "$bindir/mint-invert" --iterations 8 --batch 2 --out "$T/synthetic" > /dev/null 2>&1 ||
      { echo "careless_flags.sh: cannot make the synthetic data set with $bindir/mint-invert" >&2; exit 1; }
  fi
}

failures=0
row() {
  local name=$1 pattern=$2 prog=$3
  shift 3
  case "$mode" in
    list) echo "$name"; return ;;
    run) [[ "$name" == "$only" ]] || return ;;
  esac
  [[ -x "$bindir/$prog" ]] || { echo "$name: $bindir/$prog is not built" >&2; failures=$((failures + 1)); return; }
  rm -rf "$OUT"
  local err rc
  err=$(cd "$T" && OMP_NUM_THREADS=1 timeout "${MINT_CLI_TIMEOUT:-60}" "$bindir/$prog" "$@" 2>&1 >/dev/null)
  rc=$?
  local ok=1 why=""
  if [[ $rc -ne 2 ]]; then ok=0; why="exit code $rc, expected 2"; fi
  if ! grep -qE -- "$pattern" <<< "$err"; then ok=0; why="${why:+$why; }stderr does not match '$pattern'"; fi
  if [[ -e "$OUT" ]]; then ok=0; why="${why:+$why; }it wrote $OUT"; fi
  local first
  first=$(grep -v '^$' <<< "$err" | head -1)
  if [[ "$mode" == markdown ]]; then
    local shown="$*"
    shown=${shown//$T/\$T}
    shown=${shown//$here\/..\/..\//}
    first=${first//$T/\$T}
    first=${first//$here\/..\/..\//}
    printf '| %s | `%s %s` | %s | %s |\n' "$name" "$prog" "${shown//|/\\|}" "$rc" "${first//|/\\|}"
  else
    echo "$prog $*"
    echo "exit code $rc; stderr:"
    echo "$err"
  fi
  if [[ $ok -eq 0 ]]; then
    echo "FAIL $name: $why" >&2
    failures=$((failures + 1))
  fi
  ran=1
}

ran=0
setup
trap 'rm -rf "$T"' EXIT
if [[ "$mode" == markdown ]]; then
  echo '| row | command | exit code | message (first line of stderr) |'
  echo '|---|---|---:|---|'
fi
rows
if [[ "$mode" == run && $ran -eq 0 ]]; then
  echo "careless_flags.sh: no row named '$only'" >&2
  exit 1
fi
exit $((failures > 0))
