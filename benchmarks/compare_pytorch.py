#!/usr/bin/python3
"""PyTorch eager baseline for benchmarks/bench_vit.cpp: one model-inversion iteration
(forward + cross-entropy + input-only backward) of the same three ViTs, on the CPU.

Run with Debian's interpreter (it has python3-torch 1.13):

    OMP_NUM_THREADS=2 /usr/bin/python3 benchmarks/compare_pytorch.py --threads 2 --json out.json

The model is a plain timm-equivalent ViT (no timm): Conv2d patch embedding, cls token + pos_embed, pre-norm
blocks with a fused nn.Linear qkv, matmul + softmax attention (torch 1.13 has no scaled_dot_product_attention),
exact-erf GELU, LayerNorm eps 1e-6, final norm, linear head on the CLS token. Weights are random (only the
shapes matter for time) with requires_grad=False; the images have requires_grad=True, so autograd computes
only d loss / d images, as inversion does. With a keep set, the patch tokens are embedded, pos_embed is added
and then the kept rows are gathered per image (SMI's "prune after the position-embedding add"; mint gathers
the pixels first, which is cheaper and mathematically equal -- `--gather-first` times that variant here too).
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):
        b, t, d = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        o = (attn @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(o)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))  # F.gelu default: exact erf


class ViT(nn.Module):
    def __init__(self, img, patch, chans, dim, depth, heads, mlp, classes):
        super().__init__()
        n = (img // patch) ** 2
        self.patch_embed = nn.Conv2d(chans, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + n, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, images, keep=None, gather_first=False):
        b = images.shape[0]
        d = self.pos_embed.shape[2]
        if keep is not None and gather_first:
            # cheap equivalent: gather the kept patches' pixels, embed only those (what mint does)
            p = self.patch_embed.kernel_size[0]
            patches = F.unfold(images, p, stride=p).transpose(1, 2)  # [B, N, C*p*p]
            patches = torch.gather(patches, 1, keep[..., None].expand(-1, -1, patches.shape[2]))
            w = self.patch_embed.weight.reshape(d, -1)
            tok = F.linear(patches, w, self.patch_embed.bias)
            pos = torch.gather(self.pos_embed[:, 1:].expand(b, -1, -1), 1, keep[..., None].expand(-1, -1, d))
            tok = tok + pos
        else:
            tok = self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos_embed[:, 1:]
            if keep is not None:  # SMI: prune after the position-embedding add
                tok = torch.gather(tok, 1, keep[..., None].expand(-1, -1, d))
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(b, -1, -1)
        x = torch.cat([cls, tok], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x[:, 0]))


CASES = {
    # name: (img, patch, chans, dim, depth, heads, mlp, classes, batch, keep)
    "deit_tiny_full": (224, 16, 3, 192, 12, 3, 768, 1000, 8, None),
    "deit_tiny_keep50": (224, 16, 3, 192, 12, 3, 768, 1000, 8, 50),
    "small_full": (28, 4, 1, 64, 4, 4, 256, 10, 128, None),
}


def iteration_flops(img, patch, chans, dim, depth, heads, mlp, classes, batch, keep):
    """The analytic GEMM count of benchmarks/bench_vit.cpp (the same formula)."""
    n = (img // patch) ** 2
    kp = keep if keep else n
    t, p = 1 + kp, chans * patch * patch
    return 2 * (2 * batch * kp * p * dim + 2 * batch * dim * classes) + depth * (
        4 * batch * t * (4 * dim * dim + 2 * dim * mlp) + 12 * batch * t * t * dim)


def time_case(name, warmup, runs, gather_first=False):
    img, patch, chans, dim, depth, heads, mlp, classes, batch, keep_n = CASES[name]
    torch.manual_seed(0)
    model = ViT(img, patch, chans, dim, depth, heads, mlp, classes)
    with torch.no_grad():
        for prm in model.parameters():
            prm.uniform_(-0.1, 0.1)
    model.requires_grad_(False)
    images = (torch.rand(batch, chans, img, img) * 2 - 1).requires_grad_(True)
    labels = torch.tensor([(7 * i + 3) % classes for i in range(batch)])
    keep = None
    if keep_n:
        n = (img // patch) ** 2
        g = torch.Generator().manual_seed(42)
        keep = torch.stack([torch.randperm(n, generator=g)[:keep_n] for _ in range(batch)])

    def step():
        images.grad = None
        loss = F.cross_entropy(model(images, keep, gather_first), labels)
        loss.backward()
        return loss

    for _ in range(warmup):
        step()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    assert images.grad is not None and all(p.grad is None for p in model.parameters())
    ms = statistics.median(times) * 1e3
    flops = iteration_flops(img, patch, chans, dim, depth, heads, mlp, classes, batch, keep_n)
    return {"name": name + ("_gatherfirst" if gather_first else ""), "ms_median": ms, "ms_min": min(times) * 1e3,
            "ms_max": max(times) * 1e3, "runs": runs, "gflops": flops / (ms * 1e-3) / 1e9,
            "gflop_per_iter": flops / 1e9, "batch": batch}


def sgemm_gflops(n=1024, runs=20):
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        torch.mm(a, b)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runs", type=int, default=15, help="timed iterations per case (median reported)")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--gather-first", action="store_true", help="also time the gather-pixels-first keep variant")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    blas = [w.rstrip(",") for w in torch.__config__.show().split() if w.startswith(("BLAS_INFO", "LAPACK_INFO"))]
    with open("/proc/self/maps") as f:  # which BLAS the dynamic linker really loaded
        blas += sorted({l.split()[-1] for l in f if "blas" in l.lower() and "/" in l})
    gf = sgemm_gflops()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"1024^3 sgemm {gf:.1f} GFLOP/s (this machine: OpenBLAS ~200 with OPENBLAS_CORETYPE=Haswell, ~400 with its AVX-512 kernels; the reference BLAS ~10)", file=sys.stderr)
    print("  BLAS:", ", ".join(blas), file=sys.stderr)
    results = []
    for name in args.cases.split(","):
        r = time_case(name, args.warmup, args.runs)
        results.append(r)
        print(f"{r['name']:<28} {r['ms_median']:9.2f} ms/iter (min {r['ms_min']:.2f}, max {r['ms_max']:.2f}, "
              f"{r['runs']} runs)  {r['gflops']:6.1f} GFLOP/s", file=sys.stderr)
        if args.gather_first and CASES[name][-1]:
            r = time_case(name, args.warmup, args.runs, gather_first=True)
            results.append(r)
            print(f"{r['name']:<28} {r['ms_median']:9.2f} ms/iter (min {r['ms_min']:.2f}, max {r['ms_max']:.2f}, "
                  f"{r['runs']} runs)  {r['gflops']:6.1f} GFLOP/s", file=sys.stderr)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "sgemm1024_gflops": gf, "blas_config": blas,
           "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    else:
        json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
