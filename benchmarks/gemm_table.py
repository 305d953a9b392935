#!/usr/bin/env python3
"""Merges bench_gemm JSON outputs (--benchmark_out) into one markdown table of GFLOP/s, one column per file.

    benchmarks/gemm_table.py Eigen=eigen.json "OpenBLAS (Haswell)"=ob.json "OpenBLAS (auto)"=ob_auto.json

With --benchmark_repetitions the median aggregate is used, otherwise the single run. The ratio columns are the
first file divided by each other one (> 1: the first backend is faster).
"""
import json
import sys


def load(path):
    rows = json.load(open(path))["benchmarks"]
    med = {b["run_name"]: b["GFLOP/s"] for b in rows if b.get("aggregate_name") == "median"}
    if med:
        return med
    return {b["run_name"]: b["GFLOP/s"] for b in rows if b.get("run_type") == "iteration"}


def main():
    cols = [a.rsplit("=", 1) for a in sys.argv[1:]]  # LABEL=PATH (the label may hold "=")
    if not cols or any(len(c) != 2 for c in cols):
        sys.exit(__doc__)
    data = [(label, load(path)) for label, path in cols]
    names = list(data[0][1])
    first = data[0][0]
    ratios = [f"{first} / {label}" for label, _ in data[1:]]
    print("| shape (GFLOP/s) | " + " | ".join([label for label, _ in data] + ratios) + " |")
    print("|---|" + "---:|" * (len(data) + len(ratios)))
    for n in names:
        vals = [d.get(n, float("nan")) for _, d in data]
        cells = [f"{v:.0f}" for v in vals] + [f"{vals[0] / v:.2f}" for v in vals[1:]]
        print(f"| {n.replace('/real_time', '')} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
