"""Plain array files as command-line inputs: ``transferlab score features.npy --labels labels.npy``.

One file is one model's features on the shared dataset, named by its file stem:

* ``.npy``  (N, D) features; the labels come from ``--labels`` (and source probabilities, optional, from
  ``--probs`` / ``--logits`` when a single file is given);
* ``.npz``  named arrays: ``features`` (or ``X``), ``labels`` (or ``y``), optional ``probs`` or ``logits``;
  ``--labels`` may replace the labels inside;
* ``.csv``  a header row, one column per feature and a label column (``--label-column``, default ``label``);
  with ``--labels`` every column is a feature and the header is optional.

Each becomes an in-memory :class:`~transferlab.bank.FeatureBank` through ``FeatureBank.from_arrays`` (the
library's validation); errors are ValueErrors that name the file and the flag, for one CLI line.
Nothing here pickles: ``.npy``/``.npz`` are read with ``allow_pickle=False``.
"""
from __future__ import annotations

import csv
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["ARRAY_SUFFIXES", "is_array_file", "read_labels", "banks_from_files"]

ARRAY_SUFFIXES = (".npy", ".npz", ".csv")
_FEATURE_KEYS, _LABEL_KEYS = ("features", "X"), ("labels", "y")


def is_array_file(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in ARRAY_SUFFIXES and not os.path.isdir(path)


def _exists(path: str, flag: str) -> None:
    if not os.path.exists(path):
        raise ValueError(f"{flag} {path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{flag} {path} is a directory; give a .npy, .npz or .csv file")


def _load_npy(path: str, flag: str) -> np.ndarray:
    _exists(path, flag)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise ValueError(f"{flag} {path}: not a readable .npy file of numbers ({e})") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _labels_from_strings(values: List[str]) -> np.ndarray:
    """Integer labels when every value is an integer, else the strings (classes are remapped anyway)."""
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        return np.array(values)


def _csv_rows(path: str, flag: str, kind: str) -> List[List[str]]:
    """The non-empty rows of a UTF-8 text file read as CSV (a BOM is dropped); ``kind`` names it in the error."""
    _exists(path, flag)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return [r for r in csv.reader(f) if r]
    except UnicodeDecodeError:
        raise ValueError(f"{flag} {path}: not a UTF-8 text {kind}") from None


def _read_csv(path: str, flag: str, label_column: Optional[str]) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(features, labels or None) of a CSV; ``label_column`` None: every column is a feature."""
    rows = _csv_rows(path, flag, "CSV")
    if not rows:
        raise ValueError(f"{flag} {path}: empty CSV")
    header = None if all(_is_number(c) for c in rows[0]) else [c.strip() for c in rows[0]]
    body = rows[1:] if header is not None else rows
    if not body:
        raise ValueError(f"{flag} {path}: no data rows under the header")
    width = len(rows[0])
    short = [i for i, r in enumerate(body) if len(r) != width]
    if short:
        raise ValueError(f"{flag} {path}: row {short[0] + 1 + (header is not None)} has {len(body[short[0]])} "
                         f"columns, the first row has {width}")
    lab = None
    keep = list(range(width))
    if label_column is not None:
        if header is None:
            raise ValueError(f"{flag} {path} has no header row, so no label column {label_column!r}; add a header "
                             "or give the labels with --labels")
        if label_column not in header:
            raise ValueError(f"{flag} {path} has no column {label_column!r} (columns: {', '.join(header[:8])}"
                             f"{', ...' if len(header) > 8 else ''}); name the label column with --label-column")
        j = header.index(label_column)
        lab = _labels_from_strings([r[j].strip() for r in body])
        keep.remove(j)
    try:
        x = np.array([[float(r[j]) for j in keep] for r in body], dtype=np.float64)
    except ValueError as e:
        raise ValueError(f"{flag} {path}: a feature column holds a non-number ({e}); name the label column "
                         "with --label-column") from None
    return x, lab


def read_labels(path: str, flag: str = "--labels") -> np.ndarray:
    """Labels from a .npy file, or a one-column text / CSV file (one label a line, an optional header)."""
    if path.lower().endswith(".npy"):
        return _load_npy(path, flag)
    if path.lower().endswith(".npz"):
        raise ValueError(f"{flag} {path}: give the labels inside the .npz as 'labels', or a .npy / .csv file")
    rows = _csv_rows(path, flag, "file")
    if any(len(r) != 1 for r in rows):
        raise ValueError(f"{flag} {path}: expected one label per line (one column)")
    values = [r[0].strip() for r in rows]
    if values and not _is_number(values[0]) and len(values) > 1 and all(_is_number(v) for v in values[1:]):
        values = values[1:]  # a header over numeric labels
    return _labels_from_strings(values)


def _from_npz(path: str) -> Dict[str, Any]:
    _exists(path, "input")
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    names = list(z.files)
    out: Dict[str, Any] = {}
    for role, keys in (("features", _FEATURE_KEYS), ("labels", _LABEL_KEYS), ("probs", ("probs",)),
                       ("logits", ("logits",))):
        hit = [k for k in keys if k in names]
        if hit:
            try:
                out[role] = z[hit[0]]
            except ValueError as e:  # an object array
                raise ValueError(f"{path}: array {hit[0]!r} cannot be read without pickle ({e})") from None
    if "features" not in out:
        raise ValueError(f"{path} holds {names}; name the features array 'features' (or 'X')")
    return out


def banks_from_files(paths: List[str], *, labels: Optional[str], probs: Optional[str] = None,
                     logits: Optional[str] = None, label_column: str = "label", dataset: str = "data") -> List[Any]:
    """One in-memory FeatureBank per array file (model id: the file stem), all on dataset ``dataset``."""
    from transferlab.bank import FeatureBank

    if (probs or logits) and len(paths) != 1:
        raise ValueError("--probs/--logits go with a single features file; for several models put 'probs' or "
                         "'logits' inside each .npz")
    shared = read_labels(labels) if labels else None
    out, seen = [], {}
    for p in paths:
        name = os.path.splitext(os.path.basename(p))[0]
        if name in seen:
            raise ValueError(f"{seen[name]} and {p} would both be model {name!r}; rename one file")
        seen[name] = p
        ext = os.path.splitext(p)[1].lower()
        pr = lg = None
        if ext == ".npy":
            x, y = _load_npy(p, "input"), None
            pr = _load_npy(probs, "--probs") if probs else None
            lg = _load_npy(logits, "--logits") if logits else None
        elif ext == ".npz":
            arrays = _from_npz(p)
            x, y, pr, lg = arrays["features"], arrays.get("labels"), arrays.get("probs"), arrays.get("logits")
            if pr is not None and lg is not None:
                raise ValueError(f"{p} holds both 'probs' and 'logits'; keep one")
        else:
            x, y = _read_csv(p, "input", None if shared is not None else label_column)
        if shared is not None:
            if ext == ".npz" and y is not None:
                raise ValueError(f"{p} holds 'labels' and --labels is given too; give the labels once")
            y = shared
        if y is None:
            raise ValueError(f"{p}: no labels; give --labels FILE (.npy, or one label a line)"
                             + (" or put 'labels' in the .npz" if ext == ".npz" else ""))
        try:
            out.append(FeatureBank.from_arrays(x, y, pr, logits=lg, model_id=name, dataset_id=dataset))
        except (ValueError, TypeError) as e:
            raise type(e)(f"{p}: {e}") from None
    return out
