"""Pixel statistics of DCI training sets (docs/dci.md, "Why synthetic trails real"): for each mint synthetic-dataset
file given and the first N Fashion-MNIST training images, in [0, 1] intensities: mean, sd, the fraction of
near-black (< 0.02) and near-white (> 0.98) pixels, and the mean of the outer 3-pixel frame against the centre.
Run with /usr/bin/python3 (PyTorch): /usr/bin/python3 scripts/dci_set_stats.py out/dci/syn_official.safetensors"""
import gzip, os, sys
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_mint_dataset import load  # noqa: E402

MEAN, STD = 0.2860, 0.3530  # tasks::kFashionMnistMean / kFashionMnistStd (mint-dci-results' normalisation)

def stats(name, x):
    frame = torch.ones(28, 28, dtype=torch.bool)
    frame[3:-3, 3:-3] = False
    print(f"{name}: {x.shape[0]} images, mean {x.mean():.3f}, sd {x.std():.3f}, "
          f"near-black {100 * (x < 0.02).float().mean():.1f}%, near-white {100 * (x > 0.98).float().mean():.1f}%, "
          f"frame mean {x[:, frame].mean():.3f}, "
          f"centre mean {x[:, ~frame].mean():.3f}")

if __name__ == "__main__":
    n = 1000
    raw = gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").read()[16:16 + n * 784]
    stats("real (training)", torch.frombuffer(bytearray(raw), dtype=torch.uint8).float().view(n, 28, 28) / 255)
    for path in sys.argv[1:]:
        images = load(path)[0]
        stats(path, (images * STD + MEAN).clamp(0, 1).view(-1, 28, 28))
