#!/usr/bin/env bash
# mint-invert on a timm hub folder of an RGB ImageNet-normalised model (tests/fixtures/pytorch/hub: config.json
# pretrained_cfg mean/std) clips per channel (issue 15): after denormalising with the channel's own mean and std,
# every pixel of the dataset lies in [0, 1], and the clip binds: some channel reaches 0 and some channel reaches 1.
# With one range for all channels (the old scalar clip) the denormalised values of two channels leave [0, 1].
#
#   per_channel_clip.sh BINDIR
set -euo pipefail
bin=$(cd "$1" && pwd)/mint-invert
root=$(cd "$(dirname "$0")/../.." && pwd)
[[ -x "$bin" ]] || { echo "per_channel_clip.sh: $bin is not built" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# lr 1: large steps, so the clip binds within 10 iterations (DMI: every patch active)
OMP_NUM_THREADS=1 "$bin" --model "$root/tests/fixtures/pytorch/hub" --method dmi --iterations 10 --batch 2 --lr 1 \
  --out "$T/run" > "$T/stdout" 2> "$T/stderr" || { cat "$T/stdout" "$T/stderr"; exit 1; }
grep -q "config.json pretrained_cfg" "$T/stdout" || { echo "FAIL: normalisation not from config.json" >&2; exit 1; }
# Tolerance 1e-6: x * std + mean in float32 of a value clipped to (0 - mean) / std rounds by about 1 ulp of 1.
/usr/bin/python3 - "$T/run/dataset.safetensors" "$root/scripts" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
import load_mint_dataset as L
images, masks, labels, meta = L.load(sys.argv[1])
mean = [float(x) for x in meta["mint.normalize_mean"].split(",")]
std = [float(x) for x in meta["mint.normalize_std"].split(",")]
assert len(mean) == 3 and len(std) == 3, (mean, std)
lo_hit = hi_hit = False
for c in range(3):
    u = images[:, c] * std[c] + mean[c]
    lo, hi = float(u.min()), float(u.max())
    print(f"channel {c}: denormalised range [{lo:.7f}, {hi:.7f}]")
    assert lo >= -1e-6 and hi <= 1 + 1e-6, f"channel {c} leaves [0, 1]: [{lo}, {hi}]"
    lo_hit |= lo <= 1e-6
    hi_hit |= hi >= 1 - 1e-6
assert lo_hit and hi_hit, "the clip never binds: no channel reaches 0 and 1"
print("per-channel clip: every channel in [0, 1], both bounds reached")
PY
