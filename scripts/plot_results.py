#!/usr/bin/python3
"""Draws the figures of docs/results.md from mint-experiment's summary.json with matplotlib (Debian's
python3-matplotlib): student accuracy against inversion time, one marker per method with the seeds' spread as
error bars and the baselines as lines (PRI Fig. 1b), and the teacher-confidence histograms (PRI Figs. 5, 6).

    /usr/bin/python3 scripts/plot_results.py out/experiment/summary.json out/experiment

writes OUT/accuracy_vs_time.png (all ten classes), OUT/accuracy_vs_time_unseen.png (classes 5-9, 5-way),
OUT/confidence.png and, when the run had an equal-budget ladder (--budgets), OUT/accuracy_vs_budget.png and
OUT/accuracy_vs_budget_unseen.png (one curve per method against executed FLOPs). Errors name the file and the key
that is wrong.
"""
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

BASELINES = {"real": ("real training images", "black"), "gaussian": ("Gaussian noise", "tab:gray")}


def mean_sd(v):
    return (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0) if v else (float("nan"), 0.0)


def load(path):
    try:
        with open(path) as f:
            s = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"plot_results: cannot read {path}: {e}")
    for key in ("sets", "methods"):
        if key not in s:
            sys.exit(f"plot_results: {path} has no '{key}' (not a mint-experiment summary.json)")
    return s


def baselines_and_save(ax, fig, s, measure, label, xlabel, title, baseline_note, out):
    """The baselines as dashed lines, labels, legend and the file: what both accuracy figures share."""
    for n, (text, colour) in BASELINES.items():
        v = s["sets"].get(n, {}).get(measure)
        if v:
            a, sd = mean_sd(v)
            ax.axhline(a, color=colour, linestyle="--", label=f"{text}{baseline_note} ({a:.1f} ± {sd:.1f})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def accuracy_vs_time(s, measure, label, out):
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for n in s["methods"]:
        d = s["sets"][n]
        if not d.get("inversion_seconds") or not d.get(measure):
            continue
        t, ts = mean_sd(d["inversion_seconds"])
        a, sd = mean_sd(d[measure])
        ax.errorbar([t], [a], xerr=[ts], yerr=[sd], fmt="o", capsize=3, label=n)
    ax.set_ylim(0, 100)
    baselines_and_save(ax, fig, s, measure, label, "inversion time per set (s, 1 thread)",
                       "student accuracy against inversion time (mean ± sd over seeds)", "", out)


def accuracy_vs_budget(s, measure, label, out):
    ladder = s.get("ladder", {})
    if not ladder:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for n in s["methods"]:
        pts = ladder.get(n, [])
        if not pts:
            continue
        x = [p["gflop"] for p in pts]
        ms = [mean_sd(p[measure]) for p in pts]
        ax.errorbar(x, [m for m, _ in ms], yerr=[sd for _, sd in ms], fmt="-o", capsize=3, label=n)
    ax.set_xscale("log")
    baselines_and_save(ax, fig, s, measure, label, "inversion budget (executed GEMM GFLOP, CostMeter)",
                       "student accuracy at equal inversion compute (mean ± sd over seeds)", ", equal-count set", out)
    return True


def confidence(s, out):
    panels = [(n, s["sets"][n].get("confidence", [])) for n in s["methods"]]
    panels.append(("gaussian", s["sets"].get("gaussian", {}).get("confidence", [])))
    panels += sorted(s.get("stage_confidence", {}).items())
    panels = [(n, v) for n, v in panels if v]
    if not panels:
        return
    cols = 4
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.2 * rows), squeeze=False)
    for ax, (n, v) in zip(axes.flat, panels):
        ax.hist(v, bins=10, range=(0, 1), weights=[100.0 / len(v)] * len(v), color="tab:blue")
        ax.set_title(f"{n} (mean {statistics.mean(v):.2f}, {len(v)} images)", fontsize=8)
        ax.set_xlabel("teacher confidence in the target class", fontsize=7)
        ax.set_ylabel("% of images", fontsize=7)
        ax.set_xlim(0, 1)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_results.py SUMMARY.json OUT_DIR")
    s = load(sys.argv[1])
    os.makedirs(sys.argv[2], exist_ok=True)
    accuracy_vs_time(s, "student_all", "student top-1, all ten classes (%)",
                     os.path.join(sys.argv[2], "accuracy_vs_time.png"))
    accuracy_vs_time(s, "student_unseen_within", "student top-1, classes 5-9, 5-way (%)",
                     os.path.join(sys.argv[2], "accuracy_vs_time_unseen.png"))
    confidence(s, os.path.join(sys.argv[2], "confidence.png"))
    wrote = "accuracy_vs_time.png, accuracy_vs_time_unseen.png, confidence.png"
    if accuracy_vs_budget(s, "student_all", "student top-1, all ten classes (%)",
                          os.path.join(sys.argv[2], "accuracy_vs_budget.png")):
        accuracy_vs_budget(s, "student_unseen_within", "student top-1, classes 5-9, 5-way (%)",
                           os.path.join(sys.argv[2], "accuracy_vs_budget_unseen.png"))
        wrote += ", accuracy_vs_budget.png, accuracy_vs_budget_unseen.png"
    print(f"wrote {sys.argv[2]}/{wrote}")


if __name__ == "__main__":
    main()
