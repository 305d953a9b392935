"""The JSON reports of mint-attack-gradients runs in a folder, shared by results_gradvit.py and
results_gradvit_levers.py: each NAME.json is read and its grid NAME.png is copied into the docs' figure folder."""
import json
import os
import shutil


def load_reports(out, fig_dir):
    os.makedirs(fig_dir, exist_ok=True)
    reports = {}
    for f in sorted(os.listdir(out)):
        if f.endswith(".json"):
            reports[f[:-5]] = json.load(open(os.path.join(out, f)))
            shutil.copy(os.path.join(out, f[:-5] + ".png"), os.path.join(fig_dir, f[:-5] + ".png"))
    return reports
