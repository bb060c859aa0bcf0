"""What :func:`~transferlab.front.rank_models` accepts as ``data``, brought to one form: :class:`Rows`.

Accepted (labels are required in every form):

* ``(X, y)``: ``X`` a numeric array or tensor of N rows (images, vectors, ...), a list of N strings (text) or a
  list of N PIL images; ``y`` N labels (array, tensor or list);
* a Hugging Face ``datasets.Dataset`` (one split, not a ``DatasetDict``) with a text or image column and a label
  column, found by name (``TEXT_COLUMNS``, ``IMAGE_COLUMNS``, ``LABEL_COLUMNS``), then by feature type (one
  ``Image`` column, one ``ClassLabel`` column); ``text_column=`` / ``image_column=`` / ``label_column=`` override;
* a map-style torch ``Dataset`` or a (not shuffling) ``DataLoader`` yielding ``(x, y)``: given to
  :func:`transferlab.extract` as it is (its labels are read back from the first bank), except that a dataset of
  ``(str, label)`` pairs is read into text rows.

Labels of a classification task are remapped to ``0..C-1`` (strings, gaps, integral floats: BAD_INPUTS row 6) and
need at least two classes; other tasks keep the labels as given. Nothing the caller passed is modified.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

import numpy as np

__all__ = ["Rows", "as_rows", "TEXT_COLUMNS", "IMAGE_COLUMNS", "LABEL_COLUMNS"]

TEXT_COLUMNS = ("text", "sentence", "content", "review", "document", "question", "sentence1")
IMAGE_COLUMNS = ("image", "img", "picture", "photo")
LABEL_COLUMNS = ("label", "labels", "target", "class", "fine_label", "coarse_label", "y")


@dataclass(frozen=True)
class Rows:
    """The data of one ranking.

    kind: ``"arrays"`` (``inputs`` an array or tensor of N rows), ``"text"`` (a list of N str), ``"images"`` (a
    sequence of N PIL images or arrays, indexed lazily) or ``"torch"`` (``inputs`` the user's Dataset/DataLoader).
    labels: the labels scores read (remapped for classification), None for ``"torch"`` (read from the first bank).
    bank_labels: the int64 labels stored in banks (the labels themselves for classification; zeros for other
    tasks, whose labels a bank cannot hold). key: a short hash naming the data in the cache (the house's
    ``extract.data_fingerprint`` of the inputs, every label, and every string of a text dataset).
    """

    kind: str
    inputs: Any
    labels: Optional[np.ndarray]
    bank_labels: Optional[np.ndarray]
    n: int
    key: str
    description: str


def _is_hf_dataset(data: Any) -> bool:
    return hasattr(data, "column_names") and hasattr(data, "features") and hasattr(data, "select_columns")


def _labels_array(y: Any) -> np.ndarray:
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    if hasattr(y, "__len__") and not isinstance(y, np.ndarray):
        y = list(y)
    return np.array(y)  # a copy: the caller's labels are never touched


def _classification_labels(y: np.ndarray) -> np.ndarray:
    """``y`` as int64 codes ``0..C-1`` (order of the sorted distinct labels)."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"data: classification labels must be 1-D (N,), got shape {y.shape}; for several labels "
                         "per row pass task='multilabel'")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError(f"data: labels hold {int(np.sum(~np.isfinite(y)))} NaN or infinite values")
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise ValueError("data: labels look continuous (non-integral floats); for a regression target pass "
                         "task='regression'")
    if y.dtype.kind not in "iufbUSO":
        raise TypeError(f"data: labels must be integers or strings, got dtype {y.dtype}")
    classes, codes = np.unique(y.astype(str) if y.dtype.kind == "O" else y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"data: need at least 2 classes, got {len(classes)}")
    return codes.reshape(-1).astype(np.int64)


def _is_text(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "US" or (x.dtype.kind == "O" and x.size > 0 and isinstance(x.flat[0], str))
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(s, str) for s in x)


def _is_image_list(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(hasattr(im, "getbands") for im in x)


def _key(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, str):
            h.update(p.encode("utf-8", "surrogatepass") + b"\x00")
        elif isinstance(p, np.ndarray):
            h.update(f"{p.dtype.str}{p.shape}".encode() + np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()[:12]


def _fingerprint(inputs: Any, n: int) -> Any:
    """extract's fingerprint of ``inputs`` (8 seeded rows; the labels are hashed whole beside it)."""
    from transferlab.extract import data_fingerprint

    dummy = np.zeros(n, dtype=np.int64)
    return data_fingerprint((inputs, dummy)) if hasattr(inputs, "shape") else data_fingerprint(inputs)


def _finish(kind: str, inputs: Any, y: Any, task: str, description: str) -> Rows:
    n = len(inputs) if kind != "arrays" else int(inputs.shape[0])
    labels = _labels_array(y)
    if labels.ndim == 0 or labels.shape[0] != n:
        got = "a scalar" if labels.ndim == 0 else f"{labels.shape[0]}"
        raise ValueError(f"data: {n} inputs but {got} labels; give one label per row")
    if n < 2:
        raise ValueError(f"data: need at least 2 rows, got {n}")
    if task == "classification":
        labels = bank_labels = _classification_labels(labels)
    else:
        bank_labels = np.zeros(n, dtype=np.int64)
    if kind == "text":  # every string: cheap, and an edited sentence must not reuse a cached bank
        fp: Any = _key(*inputs)
    elif kind == "images":  # 8 seeded rows, as extract.data_fingerprint samples them
        rows = np.sort(np.random.default_rng(0).choice(n, size=min(8, n), replace=False))
        fp = _key(*[np.asarray(inputs[int(i)]) for i in rows])
    else:
        fp = _fingerprint(inputs, n)
    return Rows(kind, inputs, labels, bank_labels, n, _key(kind, n, fp, task, labels), description)


def _from_pair(data: Sequence[Any], task: str) -> Rows:
    x, y = data
    if y is None:
        raise ValueError("data: the labels (second item of (X, y)) are None; rank_models needs labelled data")
    if _is_text(x):
        return _finish("text", [str(s) for s in x], y, task, "texts")
    if _is_image_list(x):
        return _finish("images", list(x), y, task, "images")
    if hasattr(x, "detach") or isinstance(x, np.ndarray) or hasattr(x, "__array__"):
        arr = x if hasattr(x, "detach") else np.asarray(x)
        if arr.ndim < 2:
            raise ValueError(f"data: X must hold one row per sample (N, ...), got shape {tuple(arr.shape)}")
        if not hasattr(x, "detach") and arr.dtype.kind not in "biuf":
            raise TypeError(f"data: X must be numeric, text or PIL images, got dtype {arr.dtype}")
        return _finish("arrays", arr, y, task, "arrays")
    raise TypeError(f"data: X must be an array, a tensor, a list of str or a list of PIL images, got "
                    f"{type(x).__name__}")


def _pick(names: List[str], wanted: Optional[str], candidates: Sequence[str], what: str, arg: str) -> Optional[str]:
    if wanted is not None:
        if wanted not in names:
            raise ValueError(f"{arg}={wanted!r} is not a column of the dataset (columns: {names})")
        return wanted
    lower = {c.lower(): c for c in names}
    return next((lower[c] for c in candidates if c in lower), None)


def _from_hf(ds: Any, task: str, text_column: Optional[str], image_column: Optional[str],
             label_column: Optional[str]) -> Rows:
    names = list(ds.column_names)
    feats = ds.features
    label = _pick(names, label_column, LABEL_COLUMNS, "label", "label_column")
    if label is None:
        typed = [c for c in names if type(feats[c]).__name__ == "ClassLabel"]
        label = typed[0] if len(typed) == 1 else None
    if label is None:
        raise ValueError(f"data: no label column found among {names}; pass label_column=")
    text = _pick(names, text_column, TEXT_COLUMNS, "text", "text_column") if image_column is None else None
    if text is not None:
        return _finish("text", [str(s) for s in ds[text]], list(ds[label]), task, f"datasets.Dataset[{text!r}]")
    image = _pick(names, image_column, IMAGE_COLUMNS, "image", "image_column")
    if image is None:
        typed = [c for c in names if type(feats[c]).__name__ == "Image"]
        image = typed[0] if len(typed) == 1 else None
    if image is None:
        raise ValueError(f"data: no text or image column found among {names}; pass text_column= or image_column=")
    # ds[image] is a lazy column in recent `datasets`: images are decoded when a batch reads them.
    return _finish("images", ds[image], list(ds[label]), task, f"datasets.Dataset[{image!r}]")


def _from_torch(data: Any, task: str) -> Rows:
    from torch.utils.data import DataLoader

    ds = data.dataset if isinstance(data, DataLoader) else data
    try:
        n = len(ds)
        first = ds[0] if n else None
    except TypeError:
        raise ValueError("data: a torch dataset must be map-style (len() and [i]); iterable datasets cannot be "
                         "resumed") from None
    if not (isinstance(first, (tuple, list)) and len(first) >= 2):
        raise ValueError(f"data: a torch dataset must yield (x, y) pairs with labels, got {type(first).__name__}")
    if isinstance(first[0], str):  # a text dataset: read it into rows (cheap for text)
        items = [ds[i] for i in range(n)]
        return _finish("text", [str(it[0]) for it in items], [it[1] for it in items], task, type(ds).__name__)
    if task != "classification":
        raise ValueError(f"task={task!r}: give the data as (X, y) arrays or a Hugging Face dataset (a bank stores "
                         "integer class labels only, so a torch Dataset's labels cannot be read back)")
    from transferlab.extract import data_fingerprint

    fp = data_fingerprint(data)
    return Rows("torch", data, None, None, n, _key("torch", n, fp, task), type(ds).__name__)


def as_rows(data: Any, *, task: str = "classification", text_column: Optional[str] = None,
            image_column: Optional[str] = None, label_column: Optional[str] = None) -> Rows:
    """``data`` as :class:`Rows` (see the module docstring); raises ValueError/TypeError naming ``data``."""
    if isinstance(data, dict) and not _is_hf_dataset(data):
        keys = list(data)[:5]
        raise TypeError(f"data is a mapping (keys {keys}); for a Hugging Face DatasetDict pick a split, e.g. "
                        f"data[{keys[0]!r}]" if keys else "data is an empty mapping")
    if _is_hf_dataset(data):
        return _from_hf(data, task, text_column, image_column, label_column)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return _from_pair(data, task)
    if isinstance(data, (tuple, list)):
        raise ValueError(f"data: give (X, y) (two items: inputs and labels), got {len(data)} items")
    try:
        from torch.utils.data import DataLoader, Dataset
    except ImportError:  # pragma: no cover - depends on the environment
        DataLoader = Dataset = ()  # type: ignore[assignment]
    if isinstance(data, (DataLoader, Dataset)):
        return _from_torch(data, task)
    raise TypeError(f"data must be (X, y), a torch Dataset/DataLoader yielding (x, y) or a Hugging Face "
                    f"datasets.Dataset, got {type(data).__name__}")
