#!/usr/bin/env bash
# Loads a report.html written by mint (report::write_inversion_outputs) in headless Chromium (Debian's chromium)
# and checks that it shows what it should: every <img> decoded (complete, naturalWidth > 0), at least two SVG
# curves, and no error (no JavaScript error, no failed resource, no console message of level error). Then it takes
# a screenshot of the unmodified page.
#   check_report_chromium.sh REPORT.html SCREENSHOT.png
# The checks run in a copy of the page with a small inline script added at the top of <head> (the report itself
# has no script); the screenshot is of the report as written. Each Chromium run is bounded by `timeout`.
set -euo pipefail
report=$1 shot=$2
command -v chromium >/dev/null || { echo "chromium not found (Debian: apt-get install chromium)"; exit 1; }
[[ -s "$report" ]] || { echo "no report at '$report'"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(--headless --disable-gpu --hide-scrollbars --no-first-run --user-data-dir="$work/profile")
[[ $(id -u) -eq 0 ]] && flags+=(--no-sandbox)  # Chromium refuses to run as root with its sandbox
probe='<script>
window.mintErrors = [];
window.addEventListener("error", e => {
  mintErrors.push(("error: " + (e.message || (e.target && e.target.src) || "?")).slice(0, 200));
}, true);
const mintConsoleError = console.error;
console.error = (...a) => { mintErrors.push("console.error: " + a.join(" ")); mintConsoleError(...a); };
window.addEventListener("load", () => {
  const imgs = [...document.images], ok = imgs.filter(i => i.complete && i.naturalWidth > 0);
  const p = document.createElement("pre");
  p.id = "mint-check";
  p.textContent = "MINT-CHECK images=" + imgs.length + " decoded=" + ok.length + " widths=" +
                  ok.map(i => i.naturalWidth).join(",") +
                  " curves=" + document.querySelectorAll("svg polyline").length +
                  " errors=" + mintErrors.length + " " + mintErrors.join(" | ");
  document.body.appendChild(p);
});
</script>'
# The probe goes right after <head>: it must be listening before anything else in the page loads.
python3 -c 'import sys; s = open(sys.argv[1], encoding="utf-8").read(); i = s.index("<head>") + len("<head>")
open(sys.argv[2], "w", encoding="utf-8").write(s[:i] + "\n" + sys.argv[3] + s[i:])' \
  "$report" "$work/probe.html" "$probe"
timeout 60 chromium "${flags[@]}" --enable-logging=stderr --v=0 --virtual-time-budget=10000 --dump-dom \
  "file://$work/probe.html" >"$work/dom.html" 2>"$work/log.txt" ||
  { echo "chromium failed:"; cat "$work/log.txt"; exit 1; }
line=$(grep -o 'id="mint-check">MINT-CHECK[^<]*' "$work/dom.html" | sed 's/^id="mint-check">//' || true)
echo "$line"
[[ -n "$line" ]] || { echo "the page did not finish loading (no MINT-CHECK line in the DOM)"; exit 1; }
pattern='.*images=([0-9]+) decoded=([0-9]+) .*curves=([0-9]+) errors=([0-9]+).*'
read -r images decoded curves errors < <(sed -E "s/$pattern/\\1 \\2 \\3 \\4/" <<<"$line")
((images >= 1)) || { echo "the report shows no image"; exit 1; }
((decoded == images)) || { echo "only $decoded of $images images decoded"; exit 1; }
((curves >= 2)) || { echo "expected the loss and active-patch curves, found $curves"; exit 1; }
((errors == 0)) || { echo "the page reported errors"; exit 1; }
if grep -E ':CONSOLE|Uncaught|ERR_FILE_NOT_FOUND|net::ERR' "$work/log.txt"; then
  echo "Chromium logged the errors above for the page"; exit 1
fi
rm -f "$shot"
timeout 60 chromium "${flags[@]}" --window-size=1300,1800 --screenshot="$shot" "file://$(realpath "$report")" \
  >/dev/null 2>"$work/log2.txt" || { echo "screenshot failed:"; cat "$work/log2.txt"; exit 1; }
magic=$(head -c 8 "$shot" | od -An -tx1 | tr -d ' \n')
[[ $magic == 89504e470d0a1a0a ]] || { echo "no PNG screenshot at $shot"; exit 1; }
echo "report OK: $images images decoded, $curves curves, no errors; screenshot $shot"
