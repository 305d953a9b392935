"""Loads a mint synthetic-dataset file (mint-invert's dataset.safetensors) with PyTorch alone, no safetensors package.
images [M, C, H, W] are in the model's normalised input space (to_unit() gives [0, 1] pixels), masks [M, N] the
patches each image keeps (1) in row-major patch order, labels [M] the target classes, meta the file's metadata."""
import json, struct, torch

def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    assert all(v["dtype"] == "F32" for v in header.values()), f"{path}: mint writes F32 tensors only"
    t = {k: torch.frombuffer(bytearray(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]),
                             dtype=torch.float32).reshape(v["shape"]) for k, v in header.items()}
    return t["images"], t["masks"], t["labels"].long(), meta

def to_unit(images, meta):
    mean = torch.tensor([float(x) for x in meta["mint.normalize_mean"].split(",")]).view(1, -1, 1, 1)
    std = torch.tensor([float(x) for x in meta["mint.normalize_std"].split(",")]).view(1, -1, 1, 1)
    return (images * std + mean).clamp(0, 1)
