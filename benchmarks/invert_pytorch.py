#!/usr/bin/python3
"""PyTorch eager reference of mint's inversion engine (benchmarks/bench_inversion.cpp on the CPU,
benchmarks/bench_inversion_cuda.cu on a GPU), the same cases.

Run with Debian's interpreter (python3-torch 1.13):

    OMP_NUM_THREADS=2 /usr/bin/python3 benchmarks/invert_pytorch.py --threads 2 --json out.json [--filter teacher]

On a GPU (--device cuda): the per-iteration cases of bench_inversion_cuda (DeiT-Tiny/Small/Base at 224 px,
batch 128; DMI, SMI 76 %, PRI v = 4 stages), timed after torch.cuda.synchronize(), with the CUDA memory peak:

    python3 benchmarks/invert_pytorch.py --device cuda --models deit_tiny,deit_small,deit_base --batch 128 \
        --iterations-only --json torch_cuda.json

What one iteration does, as mint::Inverter does it:
  forward on the active patches only (gather the kept patches' pixels, embed them, add their position rows:
  equal to SMI's "embed, add pos, prune" and cheaper; the last block computes attention queries, projection and
  MLP for the CLS row only, as mint does, since nothing else reaches the head), cross-entropy (batch mean) +
  1e-4 * TV (SMI Eq. 2, batch mean), autograd for d loss / d images only (frozen weights), Adam (lr 0.25,
  betas (0.5, 0.99), eps 1e-8, bias correction by the global step) on the active pixels only, clip to
  [-3, 3]; at a schedule event rank the active patches by the last block's head-averaged CLS attention and
  prune the lowest (SMI) or detach the highest into a stored sparse image (PRI).
The cases, iteration counts, SMI prune points and PRI stages are those of bench_inversion.cpp (its header).
Weights: the teacher from models/fmnist_vit.safetensors; the DeiT-Tiny shape random (time only depends on shapes).
"""
import argparse
import json
import math
import os
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
from compare_pytorch import ViT  # noqa: E402  (the timm-equivalent model)
from make_fixtures import read_safetensors  # noqa: E402


def load_teacher(path):
    t, _ = read_safetensors(path)
    dim, depth = t["pos_embed"].shape[2], 1 + max(int(k.split(".")[1]) for k in t if k.startswith("blocks."))
    patch, chans = t["patch_embed.proj.weight"].shape[2], t["patch_embed.proj.weight"].shape[1]
    n = t["pos_embed"].shape[1] - 1
    img = int(math.isqrt(n)) * patch
    mlp, classes = t["blocks.0.mlp.fc1.weight"].shape[0], t["head.weight"].shape[0]
    model = ViT(img, patch, chans, dim, depth, 4, mlp, classes)  # heads: the recipe's (models/fmnist_vit.json)
    rename = {"patch_embed.proj.": "patch_embed.", ".attn.qkv.": ".qkv.", ".attn.proj.": ".proj.",
              ".mlp.fc1.": ".fc1.", ".mlp.fc2.": ".fc2."}
    state = {}
    for k, v in t.items():
        for a, b in rename.items():
            k = k.replace(a, b)
        state[k] = torch.as_tensor(v, dtype=torch.float32)
    model.load_state_dict(state)
    return model


DEIT = {"deit_tiny": (192, 3), "deit_small": (384, 6), "deit_base": (768, 12)}  # dim, heads (depth 12, MLP 4x)


def deit(name):
    dim, heads = DEIT[name]
    torch.manual_seed(0)
    model = ViT(224, 16, 3, dim, 12, heads, 4 * dim, 1000)
    with torch.no_grad():
        for prm in model.parameters():
            prm.uniform_(-0.1, 0.1)
    return model


def forward(model, images, keep):
    """logits [B, classes] and the last block's head-averaged CLS attention to the kept patches [B, K]."""
    b = images.shape[0]
    d = model.pos_embed.shape[2]
    p = model.patch_embed.kernel_size[0]
    patches = F.unfold(images, p, stride=p).transpose(1, 2)  # [B, N, C*p*p]
    pos = model.pos_embed[:, 1:].expand(b, -1, -1)
    if keep is not None:
        patches = torch.gather(patches, 1, keep[..., None].expand(-1, -1, patches.shape[2]))
        pos = torch.gather(pos, 1, keep[..., None].expand(-1, -1, d))
    tok = F.linear(patches, model.patch_embed.weight.reshape(d, -1), model.patch_embed.bias) + pos
    x = torch.cat([(model.cls_token + model.pos_embed[:, :1]).expand(b, -1, -1), tok], dim=1)
    for blk in model.blocks[:-1]:
        x = blk(x)
    blk = model.blocks[-1]  # CLS row only
    t = x.shape[1]
    qkv = blk.qkv(blk.norm1(x)).reshape(b, t, 3, blk.heads, d // blk.heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    attn = ((q[:, :, :1] * blk.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # [B, H, 1, T]
    o = (attn @ v).transpose(1, 2).reshape(b, 1, d)
    c = x[:, :1] + blk.proj(o)
    c = c + blk.fc2(F.gelu(blk.fc1(blk.norm2(c))))
    return model.head(model.norm(c[:, 0])), attn.detach().mean(dim=1)[:, 0, 1:]


def tv(images):
    """SMI Eq. 2 per image, the same ranges as mint's TV."""
    # sqrt(sum of squares) with clamp_min: the gradient is 0 where the difference is 0 (below 1e-15), as mint's
    # subgradient. (torch.linalg.vector_norm over the channel dim does the same but ran 4x slower here: 30 ms per
    # call at 8 x 3 x 224 x 224, which would have made the reference, not PyTorch, the bottleneck.)
    def n(dlt):
        return dlt.pow(2).sum(dim=1).clamp_min(1e-30).sqrt().sum(dim=(1, 2))
    c = images[:, :, 1:, 1:]
    return (n(c - images[:, :, :-1, 1:]) + n(c - images[:, :, 1:, :-1]) + n(c - images[:, :, :-1, :-1]) +
            n(images[:, :, 1:, :-1] - images[:, :, :-1, 1:]))


def pixel_mask(active, n, grid, p):
    b = active.shape[0]
    m = torch.zeros(b, n, device=active.device)
    m.scatter_(1, active, 1.0)
    return m.reshape(b, 1, grid, grid).repeat_interleave(p, 2).repeat_interleave(p, 3).bool()


def invert(model, labels, iterations, schedule, seed=7, lr=0.25, betas=(0.5, 0.99), eps=1e-8, tv_w=1e-4,
           lo=-3.0, hi=3.0, device="cpu"):
    """schedule(t, T, active, N) -> None | ("prune" | "detach", count). Returns (images, per-iteration s, active)."""
    b = len(labels)
    p = model.patch_embed.kernel_size[0]
    chans = model.patch_embed.in_channels
    n = model.pos_embed.shape[1] - 1
    grid = int(math.isqrt(n))
    img = grid * p
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, chans, img, img, generator=g).clamp_(lo, hi).to(device)
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    y = torch.tensor(labels, device=device)
    active = torch.arange(n, device=device).repeat(b, 1)
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    mask = pixel_mask(active, n, grid, p)
    out, secs, counts = [], [], []
    for t in range(1, iterations + 1):
        t0 = time.perf_counter()
        k = active.shape[1]
        xg = x.detach().requires_grad_(True)
        logits, cls_attn = forward(model, xg, active if k < n else None)
        loss = F.cross_entropy(logits, y) + tv_w * tv(xg).mean()
        (gx,) = torch.autograd.grad(loss, xg)
        with torch.no_grad():
            m = torch.where(mask, betas[0] * m + (1 - betas[0]) * gx, m)
            v = torch.where(mask, betas[1] * v + (1 - betas[1]) * gx * gx, v)
            step = lr / (1 - betas[0] ** t) * m / ((v / (1 - betas[1] ** t)).sqrt() + eps)
            x = torch.where(mask, (x - step).clamp(lo, hi), x)
        ev = schedule(t, iterations, k, n)
        if ev is not None and ev[1] > 0:
            kind, cnt = ev
            cnt = min(cnt, k - 1)
            order = cls_attn.argsort(dim=1, descending=True)  # HighAttention
            if kind == "detach":
                gone = active.gather(1, order[:, :cnt])
                out.append((x.clone(), pixel_mask(gone, n, grid, p), t))
                stay = order[:, cnt:]
            else:
                stay = order[:, :k - cnt]
            active = active.gather(1, stay.sort(dim=1).values)  # previous token order
            mask = pixel_mask(active, n, grid, p)
        if t == iterations:
            out.append((x.clone(), mask.clone(), t))
        sync()  # on a GPU: the iteration's work is done
        secs.append(time.perf_counter() - t0)
        counts.append(k)
    images = sum(o[0].shape[0] for o in out)
    return images, secs, counts


def smi_points(total):
    return [max(k + 1, round(p * total / 4000)) for k, p in enumerate((50, 100, 200, 300))]


def prune_schedule(points, ratio):
    def ev(t, total, active, n):
        return ("prune", active - max(1, math.floor(active * (1 - ratio)))) if t in points else None
    return ev


def rebirth(v):
    def ev(t, total, active, n):
        period = total // v
        return ("detach", n // v) if v > 1 and period > 0 and t % period == 0 and t // period <= v - 1 else None
    return ev


def start_at(keep):
    return lambda t, total, active, n: ("prune", active - keep) if t == 1 and active > keep else None


SETUPS = {"teacher": (128, 280), "deit_tiny": (8, 28), "deit_small": (8, 28), "deit_base": (8, 28)}
# name: (iteration-family batch, run-family T); --batch overrides the batch (bench_inversion_cuda: 128)


def cases(name, n):
    smi76 = [n]
    for _ in range(4):
        smi76.append(math.floor(smi76[-1] * 0.7))
    stages = {"dmi": [n], "smi76": smi76, "pri4": [n - k * (n // 4) for k in range(4)]}
    iters = [(f"iteration/{name}/{s}/active:{k}", k) for s, ks in stages.items() for k in ks]
    _, total = SETUPS[name]
    pts = smi_points(total)
    runs = [(f"run/{name}/dmi", lambda t, T, a, n: None, 1), (f"run/{name}/smi50", prune_schedule(pts, 0.16), 1),
            (f"run/{name}/smi76", prune_schedule(pts, 0.30), 1), (f"run/{name}/smi86", prune_schedule(pts, 0.39), 1)]
    runs += [(f"run/{name}/pri{v}", rebirth(v), v) for v in (2, 4, 7)]
    return iters, runs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--filter", default="", help="only cases whose name matches this regular expression")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each iteration case (median reported)")
    ap.add_argument("--json")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--models", default="teacher,deit_tiny", help="comma-separated: teacher, " + ", ".join(DEIT))
    ap.add_argument("--batch", type=int, default=0, help="batch of the iteration cases (0: the setup's)")
    ap.add_argument("--iterations-only", action="store_true", help="skip the whole-run cases")
    ap.add_argument("--timed", type=int, default=4, help="timed iterations per iteration case (after 1 + warmup)")
    ap.add_argument("--warmup", type=int, default=0, help="untimed iterations after the first, per iteration case")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    res = []
    for name in args.models.split(","):
        if name not in SETUPS:
            sys.exit(f"invert_pytorch.py: unknown model '{name}' (known: {', '.join(SETUPS)})")
        model = load_teacher(os.path.join(ROOT, "models", "fmnist_vit.safetensors")) if name == "teacher" else deit(name)
        model.requires_grad_(False)
        model.to(dev)
        classes = model.head.out_features
        n = model.pos_embed.shape[1] - 1
        iters, runs = cases(name, n)
        batch, total = SETUPS[name]
        batch = args.batch or batch
        for cname, keep in iters:
            if not re.search(args.filter, cname):
                continue
            per = []
            if cuda:
                torch.cuda.reset_peak_memory_stats(dev)
            skip = 1 + args.warmup
            for _ in range(args.reps):
                _, secs, _ = invert(model, [i % classes for i in range(batch)], skip + args.timed, start_at(keep),
                                    device=dev)
                per.append(statistics.mean(secs[skip:]))
            res.append({"name": cname, "ms": statistics.median(per) * 1e3, "active": keep, "batch": batch})
            if cuda:
                res[-1]["peak_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
            print(f"{cname:<40} {res[-1]['ms']:9.2f} ms/iter" +
                  (f"  peak {res[-1]['peak_mib']:.0f} MiB" if cuda else ""), file=sys.stderr)
        for cname, sched, per_traj in runs:
            if args.iterations_only or not re.search(args.filter, cname):
                continue
            traj = -(-128 // per_traj)
            t0 = time.perf_counter()
            images, secs, counts = invert(model, [i % classes for i in range(traj)], total, sched, device=dev)
            s = time.perf_counter() - t0
            res.append({"name": cname, "seconds": s, "images": images, "trajectories": traj, "iterations": total,
                        "final_active": counts[-1]})
            print(f"{cname:<40} {s:9.2f} s  {images} images  final active {counts[-1]}", file=sys.stderr)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device, "results": res}
    if cuda:
        out["device_name"] = torch.cuda.get_device_name(dev)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    else:
        json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
