"""``FeatureBank.from_arrays``: a feature bank from plain arrays (features, labels, optional source
probabilities or logits) that the user already has, e.g. embeddings computed elsewhere.

Contract:
* Validation goes through the library's one input path (:func:`transferlab.core.arrays.as_matrix`,
  :func:`~transferlab.core.arrays.as_labels`, :func:`~transferlab.core.inputs.check_finite`, and for
  probabilities :func:`transferlab.scores.leep._stats.validate_probs`), so a bank built here raises on exactly
  what the scores would raise on (BAD_INPUTS.md rows 1-4, 6-8, 10, 12, 14), naming the argument.
* Labels are remapped to ``0..C-1`` (banks store int64 codes); the original classes are kept in
  ``meta["classes"]`` so string labels survive the round trip.
* Banks store logits, and every probs score reads ``softmax(bank.logits)``. Probabilities are therefore stored
  as their logarithm (``softmax(log p) == p`` for rows summing to 1), with ``log 0`` written as the most negative
  finite number of the storage dtype, whose softmax term is exactly 0. ``meta["logits_from"]`` records which.
* Inputs are never mutated; with ``path`` the rows are written through :class:`~transferlab.bank.BankWriter` in
  blocks (a memory-mapped input is never read whole), and the returned bank is the verified, opened directory.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

__all__ = ["ArrayRows", "validate_arrays"]

_BLOCK_BYTES = 64 << 20  # rows written per BankWriter.write call: about this many bytes of features


def _storage_dtype(m) -> str:
    """float16/float32/float64 inputs keep their dtype; anything else accepted (int, bool, bfloat16) is float32."""
    return m.dtype if m.dtype in ("float16", "float32", "float64") else "float32"


def _host(m, start: int, stop: int, dtype: str) -> np.ndarray:
    """Rows [start, stop) of a validated Matrix as a host array of ``dtype`` (a copy only where needed)."""
    if m.device != "cpu" or m.is_bf16:
        return m.to_float64_host(start, stop).astype(dtype)
    return np.asarray(m.data[start:stop], dtype=dtype)


def _jsonable_classes(classes: np.ndarray) -> list:
    return [c.item() if hasattr(c, "item") else str(c) for c in classes]


class ArrayRows:
    """Validated arrays, readable by row blocks in their storage dtype; ``bank.py`` writes them."""

    def __init__(self, m, codes: np.ndarray, src, src_name: Optional[str], store: str, meta: dict) -> None:
        self.m, self.codes, self.src, self.src_name, self.store, self.meta = m, codes, src, src_name, store, meta
        self.n, self.d = m.n, m.d
        self.z = None if src is None else src.d

    def features(self, start: int, stop: int) -> np.ndarray:
        return _host(self.m, start, stop, self.store)

    def logits(self, start: int, stop: int) -> Optional[np.ndarray]:
        if self.src is None:
            return None
        block = _host(self.src, start, stop, "float64")
        if self.src_name == "logits":
            return block.astype(self.store)
        with np.errstate(divide="ignore"):
            out = np.log(block)
        out[block <= 0] = np.finfo(np.dtype(self.store)).min  # exp(min - max) == 0 exactly: the zero survives
        return out.astype(self.store)

    def block_rows(self) -> int:
        return max(1, _BLOCK_BYTES // max(1, self.d * np.dtype(self.store).itemsize))


def validate_arrays(features: Any, labels: Any, probs: Any = None, *, logits: Any = None,
                    model_id: str = "model", dataset_id: str = "data", dtype: Optional[str] = None,
                    storage_dtypes=("float32", "float16", "float64")) -> ArrayRows:
    """Check the inputs of ``FeatureBank.from_arrays`` (nothing is read twice or copied whole)."""
    from transferlab.core.arrays import as_labels, as_matrix
    from transferlab.core.inputs import check_finite

    if probs is not None and logits is not None:
        raise ValueError("give probs= or logits=, not both (a bank stores one set of source outputs)")
    for name, v in (("model_id", model_id), ("dataset_id", dataset_id)):
        if not isinstance(v, str) or not v:
            raise TypeError(f"{name} must be a non-empty string, got {v!r}")
    m = as_matrix(features, "features")
    lab = as_labels(labels, m.n, "labels", min_classes=2)
    check_finite(m, "raise")
    store = dtype or _storage_dtype(m)
    if store not in storage_dtypes:
        raise ValueError(f"dtype must be one of {storage_dtypes}, got {dtype!r}")
    src, src_name = (probs, "probs") if probs is not None else (logits, "logits")
    sm = None
    if src is not None:
        from transferlab.scores.leep._stats import validate_probs

        sm = as_matrix(src, src_name)
        if sm.n != m.n:
            raise ValueError(f"{src_name} has {sm.n} rows but features have n_samples={m.n}")
        validate_probs(sm, lab, from_logits=src_name == "logits")  # NaN/inf; for probs negatives and row sums
    meta = {"model_id": model_id, "dataset_id": dataset_id, "adapter": "arrays", "preprocessing": None,
            "weights_hash": None, "autocast": None, "classes": _jsonable_classes(lab.classes),
            "logits_from": None if sm is None else src_name}
    return ArrayRows(m, lab.codes.astype(np.int64), sm, None if sm is None else src_name, store, meta)
