"""The expert pool (Puigcerver et al., "Scalable transfer learning with expert models", in miniature).

Trained by ``bench/zoo/train_experts.py`` on the *train* splits of MNIST + Fashion-MNIST (20 classes: digits
0-9 are classes 0-9, Fashion-MNIST classes are 10-19) and shipped under ``transferlab/data/experts/`` as float16
state dicts plus ``manifest.json`` (architecture, label subtree, SHA-256 of each file, training accuracy).

Label hierarchy:  all-20 -> digits (0-9) -> digits-low (0-4), digits-high (5-9)
                         -> fashion (10-19) -> fashion-tops (T-shirt, pullover, dress, coat, shirt),
                                               fashion-other (trouser, sandal, sneaker, bag, ankle boot)
A generalist (``mf20-base``) is trained on all 20 classes; each expert is fine-tuned from it on one subtree
(with a new head over the subtree's classes); ``mf20-wide`` is an architecture variant (1.5x width) and
``mf20-small`` a data variant (5% of the training images), both generalists.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from typing import Dict, List

from transferlab.zoo._preprocess import Preprocess

__all__ = ["EXPERT_NAMES", "ExpertCNN", "build_expert_cnn", "manifest", "experts_dir", "load_expert", "label_priors",
           "GENERIC_MODEL"]

#: The generic model of label matching: the generalist trained on all 20 upstream labels.
GENERIC_MODEL = "mf20-base"


def experts_dir() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "experts")


@functools.lru_cache(maxsize=None)
def manifest() -> Dict[str, dict]:
    """{name: entry} from the shipped manifest ({} when the expert pool is not shipped)."""
    path = os.path.join(experts_dir(), "manifest.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return {e["name"]: e for e in json.load(f)["models"]}


EXPERT_NAMES: List[str] = list(manifest())


@functools.lru_cache(maxsize=None)
def _priors_record() -> dict:
    path = os.path.join(experts_dir(), "label_priors.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is not shipped: run bench/zoo/label_priors.py")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def label_priors() -> Dict[str, "object"]:
    """``{expert: (20,) float64 counts}``: how many training images of each upstream label (digits 0-9, then
    the Fashion-MNIST classes) each zoo expert was trained on, as shipped in ``data/experts/label_priors.json``
    (made by ``bench/zoo/label_priors.py``). What ``select_expert("label_matching")`` uses by default. Reads
    JSON only (no torch); a fresh copy each call, so callers may modify it."""
    import numpy as np

    return {k: np.asarray(v, dtype=np.float64) for k, v in _priors_record()["priors"].items()}


def build_expert_cnn(width: int, n_classes: int):
    """3 conv blocks (conv-BN-ReLU-maxpool: 28 -> 14 -> 7 -> 3) of width w, 2w, 2w, then a 128-unit MLP head.
    Small on purpose: ~130k parameters at w=32, so the whole pool ships in under 2 MB as float16."""
    from torch import nn

    class ExpertCNN(nn.Module):
        def __init__(self):
            super().__init__()
            w = width

            def block(i, o):
                return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]

            self.features = nn.Sequential(*block(1, w), *block(w, 2 * w), *block(2 * w, 2 * w))
            self.classifier = nn.Sequential(nn.Linear(2 * w * 9, 128), nn.ReLU(), nn.Linear(128, n_classes))

        def forward(self, x):
            return self.classifier(self.features(x).flatten(1))

    return ExpertCNN()


ExpertCNN = build_expert_cnn  # the factory is the public name for the architecture

MEAN, STD = (0.5,), (0.5,)


def load_expert(name: str, make):
    """Build the expert ``name`` from its shipped float16 weights (verifying the recorded SHA-256)."""
    import torch

    e = manifest()[name]
    path = os.path.join(experts_dir(), e["file"])
    with open(path, "rb") as f:
        raw = f.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != e["sha256"]:
        raise ValueError(f"expert weights {path} are corrupted: SHA-256 {digest[:16]}..., manifest says "
                         f"{e['sha256'][:16]}...")
    import io

    state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    module = build_expert_cnn(int(e["width"]), int(e["n_classes"]))
    module.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
    card = {"upstream_size": int(e["upstream_size"]), "tags": tuple(e["tags"])}
    return make(name, module, "classifier.2", Preprocess(28, 1, MEAN, STD), card, digest[:16])
