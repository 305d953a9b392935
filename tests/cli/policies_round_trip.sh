#!/usr/bin/env bash
# mint-invert's policies as JSON (the registry, include/mint/inversion/registry.hpp): a run's report.json records
# its policies; a second run configured from that object alone (--policies) records the same policies and makes
# the same images (bit for bit: same seed, one thread). A parameter only the file can set (jitterflip's flip)
# reaches the run: the report records it and the images change.
#
#   policies_round_trip.sh BINDIR
set -euo pipefail
bin=$(cd "$1" && pwd)/mint-invert
root=$(cd "$(dirname "$0")/../.." && pwd)
[[ -x "$bin" ]] || { echo "policies_round_trip.sh: $bin is not built" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
run() {
  local out=$1
  shift
  OMP_NUM_THREADS=1 "$bin" --iterations 6 --batch 2 --out "$T/$out" "$@" > "$T/$out.log" 2>&1 ||
    { cat "$T/$out.log"; exit 1; }
}
run a --method smi --prune 2,4 --ratio 0.5 --selector random --augment jitterflip --tv 2e-4 --l2 1e-5
/usr/bin/python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
pol = json.load(open(f"{t}/a/report.json"))["policies"]
json.dump(pol, open(f"{t}/p.json", "w"))
pol["augmentation"]["params"]["flip"] = False
json.dump(pol, open(f"{t}/noflip.json", "w"))
PY
run b --policies "$T/p.json"
run c --policies "$T/noflip.json"
/usr/bin/python3 - "$T" "$root/scripts" <<'PY'
import json, sys
t = sys.argv[1]
sys.path.insert(0, sys.argv[2])
import load_mint_dataset as L
rep = {r: json.load(open(f"{t}/{r}/report.json")) for r in "abc"}
assert rep["a"]["policies"] == rep["b"]["policies"], (rep["a"]["policies"], rep["b"]["policies"])
assert rep["b"]["method"] == "smi" and rep["b"]["prune"] == [2, 4] and rep["b"]["selector"] == "random", rep["b"]
assert rep["c"]["policies"]["augmentation"]["params"]["flip"] is False, rep["c"]["policies"]
img = {r: L.load(f"{t}/{r}/dataset.safetensors")[0] for r in "abc"}
assert img["a"].shape == img["b"].shape and (img["a"] == img["b"]).all(), "the run from --policies made other images"
assert not (img["b"] == img["c"]).all(), "flip = false in the policies file did not change the run"
print("policies round trip: same policies, same images; flip = false changes the run")
PY
