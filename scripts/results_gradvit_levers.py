#!/usr/bin/env python3
"""Writes docs/results_gradvit_levers.md and docs/figures/gradvit_levers/*.png from the JSON reports of
scripts/results_gradvit_levers.sh (called by it: results_gradvit_levers.py OUT_DIR ITER COMMAND [ROW...], the rows
when only some were run). Runs that have
not finished yet are listed as missing, so a partial study still gives a table."""
import os
import sys

out, iters, command, only = sys.argv[1], int(sys.argv[2]), sys.argv[3], set(sys.argv[4:])  # only: the rows run
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
fig_name = "gradvit_levers" if iters == 300 else f"gradvit_levers_T{iters}"  # the T = 300 screen keeps its names
fig_dir = os.path.join(root, "docs", "figures", fig_name)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gradvit_reports import load_reports  # noqa: E402

R = load_reports(out, fig_dir)

ROWS = [  # name, what changes against the row above it in its group
    ("april_cf_fmnist_vit", "APRIL closed form, batch 1, converged teacher (89.9 %)"),
    ("april_cf_fmnist_vit_e1", "APRIL closed form, batch 1, one-epoch checkpoint (78.6 %)"),
    ("april_cf_fmnist_vit_init", "APRIL closed form, batch 1, checkpoint at initialisation"),
    ("ig_converged", "batch 8, IG (cosine + TV 1e-3), converged teacher"),
    ("ig_e1", "batch 8, IG, one-epoch checkpoint"),
    ("ig_init", "batch 8, IG, checkpoint at initialisation"),
    ("e1_april1", "batch 8, one-epoch: + APRIL position-embedding term (weight 1)"),
    ("e1_labels_repeats", "batch 8, one-epoch: recovered labels with repeats (impact rule) instead of true labels"),
    ("e1_prior_sched", "batch 8, one-epoch: + BN prior 1e-2 from T/2 with the Eq. 5-6 schedule"),
    ("e1_prior_nosched", "batch 8, one-epoch: + BN prior 1e-2 throughout, no schedule"),
    ("e1_dlg", "batch 8, one-epoch: DLG (L2 distance, no TV)"),
    ("e1_ig_b1", "batch 1, IG, one-epoch checkpoint (image 0)"),
    ("e1_ig_b2", "batch 2, IG, one-epoch checkpoint (images 0, 1)"),
    ("e1_ig_b4", "batch 4, IG, one-epoch checkpoint (images 0..3)"),
    # the second screen: the objective and the optimiser, converged teacher unless named
    ("truth_tv1e-3", "oracle: IG (TV 1e-3) started at the hidden batch itself"),
    ("truth_tv0", "oracle: cosine alone (TV 0) started at the hidden batch itself"),
    ("truth_tv1e-4", "oracle: cosine + TV 1e-4 started at the hidden batch itself"),
    ("truth_tv0_lr0.01", "oracle: cosine alone started at the hidden batch, Adam lr 0.01"),
    ("tv1e-4", "batch 8, cosine + TV 1e-4"),
    ("tv1e-5", "batch 8, cosine + TV 1e-5"),
    ("tv0", "batch 8, cosine alone (TV 0)"),
    ("tv1e-5_lr0.01", "TV 1e-5, Adam lr 0.01 (not 0.1)"),
    ("tv1e-5_constlr", "TV 1e-5, constant lr (no cosine decay)"),
    ("tv1e-5_signed", "TV 1e-5, signed gradients (Inverting Gradients)"),
    ("tv1e-5_layercos", "TV 1e-5, mean per-tensor cosine (mint's variant)"),
    ("tv1e-5_mean", "TV 1e-5, started at the dataset-mean image"),
    ("tv1e-5_reg", "TV 1e-5, 4 seeds + registration 1e-2 every 100"),
    ("tv1e-5_e1", "TV 1e-5, one-epoch checkpoint"),
    ("tv1e-5_init", "TV 1e-5, checkpoint at initialisation"),
    ("tv1e-4_lr0.01", "TV 1e-4, Adam lr 0.01 (not 0.1)"),
    ("tv1e-4_signed", "TV 1e-4, signed gradients (Inverting Gradients)"),
    ("tv1e-4_layercos", "TV 1e-4, mean per-tensor cosine (mint's variant)"),
    ("tv1e-4_reg", "TV 1e-4, 4 seeds + registration 1e-2 every 100"),
    ("tv1e-4_e1", "TV 1e-4, one-epoch checkpoint"),
    ("tv1e-4_init", "TV 1e-4, checkpoint at initialisation"),
    ("tv1e-4_april", "TV 1e-4, + APRIL position-embedding term (weight 1)"),
    ("p14_cf", "patch-14 victim (4 tokens, one epoch): APRIL closed form, batch 1"),
    ("p14_b1", "patch-14 victim: IG (TV 1e-3), batch 1"),
    ("p14_b1_tv0", "patch-14 victim: cosine alone, batch 1"),
    ("p14_b8", "patch-14 victim: cosine + TV 1e-4, batch 8"),
    ("wide_ig", "dim-192 victim at initialisation: IG (TV 1e-3), batch 8"),
    ("wide_tv1e-4_signed", "dim-192 victim at initialisation: TV 1e-4 + signed gradients, batch 8"),
    # the third screen: the DeiT-recipe victim and the subspace (PCA) prior
    ("deit_tv1e-4", "DeiT-recipe victim (label smoothing, mixup/cutmix; 88.0 %): cosine + TV 1e-4, pixels"),
    ("deit_tv1e-3", "DeiT-recipe victim: IG (cosine + TV 1e-3), pixels"),
    ("deit_sub128", "DeiT-recipe victim: cosine on the top-128 principal components (subspace prior), TV 0"),
    ("deit_sub64", "DeiT-recipe victim: subspace prior, 64 components"),
    ("deit_sub256", "DeiT-recipe victim: subspace prior, 256 components"),
    ("deit_sub128_s4", "DeiT-recipe victim: subspace prior 128, 4 seeds (the least final distance kept)"),
    ("deit_sub128_truth", "oracle: DeiT-recipe victim, subspace prior 128, started at the hidden batch's projection"),
    ("sub128_converged", "converged teacher: subspace prior 128"),
    ("sub128_e1", "one-epoch checkpoint: subspace prior 128"),
    ("deit_tv3e-4", "DeiT-recipe victim: cosine + TV 3e-4, pixels"),
    ("deit_tv3e-5", "DeiT-recipe victim: cosine + TV 3e-5, pixels"),
    ("deit_tv1e-4_signed", "DeiT-recipe victim: TV 1e-4, signed gradients"),
    ("deit_tv1e-4_layercos", "DeiT-recipe victim: TV 1e-4, mean per-tensor cosine"),
    ("deit_tv1e-4_s4", "DeiT-recipe victim: TV 1e-4, 4 seeds (the least final distance kept)"),
    ("deit_sub128_tv1e-4", "DeiT-recipe victim: subspace prior 128 + TV 1e-4"),
    ("deit_truth_tv1e-4", "oracle: DeiT-recipe victim, TV 1e-4, started at the hidden batch"),
    ("deit_truth_tv0", "oracle: DeiT-recipe victim, cosine alone, started at the hidden batch"),
    ("deit_tv1e-4_cm", "DeiT-recipe victim: TV 1e-4, each image started at its label's public class mean"),
    ("deit_sub128_cm", "DeiT-recipe victim: subspace prior 128, started at the class means"),
    ("cm_converged", "converged teacher: TV 1e-4, started at the class means"),
    ("deit_tv1e-4_cm_lr0.03", "DeiT-recipe victim: TV 1e-4, started at the class means, Adam lr 0.03"),
    ("deit_tv1e-4_cm_lr0.01", "DeiT-recipe victim: TV 1e-4, started at the class means, Adam lr 0.01"),
    ("deit_tv1e-5_cm_lr0.01", "DeiT-recipe victim: TV 1e-5, started at the class means, Adam lr 0.01"),
    ("deit_tv0_cm_lr0.01", "DeiT-recipe victim: cosine alone (TV 0), started at the class means, Adam lr 0.01"),
    ("deit_sub128_cm_tv1e-4", "DeiT-recipe victim: subspace prior 128 + TV 1e-4, started at the class means"),
    ("deit_sub256_cm", "DeiT-recipe victim: subspace prior 256, started at the class means"),
    ("deit_sub128_cm_lr0.03", "DeiT-recipe victim: subspace prior 128, started at the class means, Adam lr 0.03"),
    ("deit_sub512_cm", "DeiT-recipe victim: subspace prior 512, started at the class means"),
    ("deit_sub256_cm_lr0.03", "DeiT-recipe victim: subspace prior 256, started at the class means, Adam lr 0.03"),
    ("deit_sub256_cm_repeats", "DeiT-recipe victim: subspace 256 from the class means, labels recovered (repeats rule)"),
    ("deit_sub256_cm_first8", "DeiT-recipe victim: subspace 256 from the class means, another batch (test images 8..15)"),
    ("sub256_cm_converged", "converged teacher: subspace prior 256, started at the class means"),
]


def db(v):
    """A PSNR from a report: JSON has no infinity, so an exact recovery (MSE 0) is written as null."""
    return float("inf") if v is None else v


def mean(v):
    return sum(v) / len(v)


L = ["# GradViT levers: what each one does at batch 8 (issue 19)\n",
     f"Generated by `{command}` (T = {iters} iterations per batch-8 run; one run at a time, one thread, nice 19, on "
     "the 2-core machine beside other builds and runs: the times include that contention). Every run is "
     "one call of `mint-attack-gradients`; JSON reports in `out/results_gradvit_levers/`, grids (originals on top, "
     f"matched recoveries below) in `docs/figures/{fig_name}/`. Same hidden batch for every batch-8 row "
     "(Fashion-MNIST test images 0..7), same init seed 0; batch-1 rows use test image 0. PSNR on the [0, 1] scale "
     "after the optimal assignment; 'Δ vs mean image' is the gain over the constant dataset-mean image, 'Δ vs "
     "class means' the gain over each image's label's mean public (training-split) image, what the labels and public "
     "data give without the gradient's pixel information (n/a: no report of that batch and labels records it). "
     "Checkpoints: "
     "`models/fmnist_vit.safetensors` (converged), `models/fmnist_vit_e1.safetensors` (one epoch of "
     "`mint-train-teacher`, 78.6 % test accuracy) and `models/fmnist_vit_init.safetensors` (the trainer's "
     "initialisation: one AdamW step at lr 1e-9) and `models/fmnist_vit_deit.safetensors` (DeiT's recipe: label "
     "smoothing 0.1, mixup 0.8 / cutmix 1.0, random erasing, 25 epochs, 88.0 %); every checkpoint has a learned "
     "position embedding.\n",
     "| lever | PSNR dB | Δ vs mean image | Δ vs class means | SSIM | FFT2D | labels right | s | per-image PSNR | grid |",
     "|---|---|---|---|---|---|---|---|---|---|"]
def batch_key(r):
    return (tuple(r["test_images"]), tuple(r["labels_used"]))


class_mean_ref = {batch_key(r): r["reference_class_mean_image"] for r in R.values() if "reference_class_mean_image" in r}
missing = []
for name, label in [r for r in ROWS if not only or r[0] in only]:
    if name not in R:
        missing.append(name)
        continue
    r = R[name]
    m, ref = r["recovered"], r["reference_mean_image"]
    per = ", ".join(f"{db(p):.1f}" for p in m["psnr_per_image"])
    psnr = db(m["psnr"])
    # recorded since the third screen; it depends only on the batch and the labels used, so a report that predates
    # it takes it from one of the same batch and labels
    cm = r.get("reference_class_mean_image") or class_mean_ref.get(batch_key(r))
    dcm = f"{psnr - cm['psnr']:+.2f}" if cm else "n/a"
    seeds = r["options"].get("seeds", 1)
    cons = f" (consensus of {seeds} seeds: {db(r['consensus']['psnr']):.2f})" if seeds > 1 else ""
    L.append(f"| {label} | {psnr:.2f}{cons} | {psnr - ref['psnr']:+.2f} | {dcm} | {m['ssim']:.3f} | {m['fft2d']:.4f} | "
             f"{r['labels_correct']}/{r['batch']} | {r['seconds']:.0f} | {per} | "
             f"![](figures/{fig_name}/{name}.png) |")
if missing:
    L.append("\nNot run yet (the script resumes them): " + ", ".join(f"`{n}`" for n in missing) + ".\n")
# the oracle rows start at the hidden batch: they say where the objective's minimiser lies, not what an attack
# recovers, so the bar is judged on the other rows
attacks = [R[n] for n, _ in ROWS if n in R and R[n]["batch"] == 8 and R[n]["options"].get("init", "noise") != "truth"]
if attacks:
    best = max(attacks, key=lambda r: db(r["recovered"]["psnr"]) - r["reference_mean_image"]["psnr"])
    gain = db(best["recovered"]["psnr"]) - best["reference_mean_image"]["psnr"]
    cm = best.get("reference_class_mean_image") or class_mean_ref.get(batch_key(best))
    over_cm = (f" Over its class-mean reference ({cm['psnr']:.2f} dB) it gains "
               f"{db(best['recovered']['psnr']) - cm['psnr']:+.2f} dB." if cm else "")
    L.append(f"\n**Bar (batch 8 at least 5 dB above the mean image):** the best batch-8 row gains {gain:+.2f} dB; "
             + ("met." if gain >= 5 else "missed at this T.") + over_cm + "\n")
# what the shared gradient holds of each image: the norm of each image's own gradient (the batch's is their mean),
# per victim, from the reports that record it
norms = {}
for n, _ in ROWS:
    if n in R and R[n]["batch"] == 8 and "hidden_gradient_norm_per_image" in R[n]:
        norms.setdefault(os.path.basename(R[n]["model"]), R[n]["hidden_gradient_norm_per_image"])
if norms:
    L += ["\n**Per-image gradient norms of the hidden batch** (the evaluator's view: |dL(x_b, y_b)/dW| for each image "
          "alone; the shared gradient is their mean, so an image orders of magnitude below the others is all but "
          "absent from it):\n", "| victim | norm per image (images 0..7) | largest / smallest |", "|---|---|---|"]
    for model, v in norms.items():
        L.append(f"| `{model}` | {', '.join(f'{x:.3g}' for x in v)} | {max(v) / max(min(v), 1e-30):.3g} |")
os.makedirs(os.path.join(root, "docs"), exist_ok=True)
doc = "results_gradvit_levers.md" if iters == 300 else f"results_gradvit_levers_T{iters}.md"
path = os.path.join(root, "docs", doc)
with open(path + ".tmp", "w") as f:
    f.write("\n".join(L) + "\n")
os.replace(path + ".tmp", path)
print("wrote", path, "with", len(R), "runs")
