#!/usr/bin/env python3
"""Merges bench_gemm JSON outputs (--benchmark_out) into one markdown table of GFLOP/s, one column per candidate.

    benchmarks/gemm_table.py eigen=e.1.json,e.2.json openblas=o.1.json,o.2.json ...

Each column is LABEL=PATH[,PATH...]: the median over the files (rounds) per shape. A cell is marked "(wrong)" when
the candidate's results check failed there (err_vs_bound > 1: an error larger than any correct float GEMM can
make). The last columns: the fastest correct candidate per shape and its speed over the first column.
"""
import json
import statistics
import sys


def load(paths):
    runs = {}
    for path in paths.split(","):
        for b in json.load(open(path))["benchmarks"]:
            if b.get("run_type") != "iteration":
                continue
            runs.setdefault(b["run_name"], []).append((b["GFLOP/s"], b.get("err_vs_bound", float("nan"))))
    return {n: (statistics.median(g for g, _ in v), max(e for _, e in v)) for n, v in runs.items()}


def main():
    cols = [a.rsplit("=", 1) for a in sys.argv[1:]]  # LABEL=PATHS (the label may hold "=")
    if not cols or any(len(c) != 2 for c in cols):
        sys.exit(__doc__)
    data = [(label, load(paths)) for label, paths in cols]
    first = data[0][0]
    print("| shape (GFLOP/s) | " + " | ".join(label for label, _ in data) + f" | fastest correct | it / {first} |")
    print("|---|" + "---:|" * len(data) + "---|---:|")
    worst = {label: 0.0 for label, _ in data}
    for n in data[0][1]:
        cells, best = [], None
        for label, d in data:
            g, e = d.get(n, (float("nan"), float("nan")))
            worst[label] = max(worst[label], e)
            ok = e <= 1.0
            cells.append(f"{g:.0f}" + ("" if ok else " (wrong)"))
            if ok and (best is None or g > best[1]):
                best = (label, g)
        base = data[0][1].get(n, (float("nan"),))[0]
        tail = f"{best[0]} | {best[1] / base:.2f}" if best else "none | -"
        print(f"| {n.replace('/real_time', '')} | " + " | ".join(cells) + f" | {tail} |")
    print()
    print("Results check, largest err_vs_bound over every shape (<= 1: within the float error bound of a correct "
          "GEMM): " + ", ".join(f"{label} {e:.3g}" for label, e in worst.items()))


if __name__ == "__main__":
    main()
