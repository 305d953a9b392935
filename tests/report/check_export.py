"""Reads mint's image-folder export with torchvision.datasets.ImageFolder and its dataset file with
scripts/load_mint_dataset.py, as a PyTorch user would, and checks that they agree: one PNG per dataset row, in the
folder of its label (class_to_idx.json maps folders to the model's labels), colour = the dataset's pixels
denormalised to bytes, alpha = the patch mask. Run with Debian's torch and torchvision:
    /usr/bin/python3 check_export.py OUT_DIR SCRIPTS_DIR      (OUT_DIR holds grey/ and rgb/, see make_report_fixture)
Tolerance: colour bytes may differ by 1 from round(clamp(x * std + mean, 0, 1) * 255) computed here, because mint
computes the same value as (x - lo) / (hi - lo) in float32 and a value within rounding of k + 0.5 can round either
way; alpha and labels must match exactly."""
import json, os, sys

import torch
from PIL import Image
from torchvision.datasets import ImageFolder
from torchvision.transforms.functional import pil_to_tensor

out, scripts = sys.argv[1], sys.argv[2]
sys.path.insert(0, scripts)
import load_mint_dataset  # noqa: E402


def check(case, channels, expect_classes):
    folder = os.path.join(out, case, "images")
    images, masks, labels, meta = load_mint_dataset.load(os.path.join(out, case, "dataset.safetensors"))
    m, c, h, w = images.shape
    assert c == channels, f"{case}: dataset has {c} channels, expected {channels}"
    names = json.loads(meta["mint.class_names"])
    assert names == expect_classes, f"{case}: class names {names}"
    index = json.load(open(os.path.join(folder, "class_to_idx.json")))
    assert index["mint.kind"] == "image_folder" and index["images"] == m, f"{case}: {index}"

    ds = ImageFolder(folder)  # the default loader: PIL, converted to RGB
    assert len(ds) == m, f"{case}: ImageFolder sees {len(ds)} images, the dataset has {m}"
    present = sorted({names[int(l)].replace("/", "_") if names else str(int(l)) for l in labels})
    assert ds.classes == present, f"{case}: folders {ds.classes}, the dataset's classes {present}"
    assert set(ds.classes) <= set(index["class_to_idx"]), f"{case}: folders {ds.classes} not all in class_to_idx"
    expected = torch.round(load_mint_dataset.to_unit(images, meta) * 255)
    patch = int(round((h * w / masks.shape[1]) ** 0.5))  # N = (H / patch) * (W / patch)
    seen = set()
    for i, (path, target) in enumerate(ds.samples):
        row = int(os.path.splitext(os.path.basename(path))[0])
        assert row not in seen, f"{case}: row {row} exported twice"
        seen.add(row)
        label = index["class_to_idx"][ds.classes[target]]
        assert label == int(labels[row]), f"{case}: {path} is in class {label}, the dataset says {int(labels[row])}"
        if names:
            assert ds.classes[target] == names[label].replace("/", "_"), f"{case}: folder {ds.classes[target]}"
        rgb = pil_to_tensor(ds[i][0]).float()  # what a training pipeline gets: [3, H, W]
        want = expected[row] if c == 3 else expected[row].expand(3, h, w)
        diff = (rgb - want).abs().max().item()
        assert diff <= 1, f"{case}: {path} differs from the dataset by {diff} grey levels"
        raw = pil_to_tensor(Image.open(path))  # the file itself: grey + alpha or RGBA
        assert raw.shape == (c + 1, h, w), f"{case}: {path} has shape {tuple(raw.shape)}"
        grid = masks[row].view(h // patch, w // patch)
        alpha = grid.repeat_interleave(patch, 0).repeat_interleave(patch, 1) * 255
        assert torch.equal(raw[c].float(), alpha), f"{case}: {path}: alpha is not the patch mask"
    assert seen == set(range(m)), f"{case}: rows {sorted(set(range(m)) - seen)} missing"
    print(f"{case}: {m} images, {len(ds.classes)} classes, labels, pixels (max diff <= 1) and masks agree")


fashion = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
check("grey", 1, fashion)
check("rgb", 3, ["red/ish", "green", "blue"])
