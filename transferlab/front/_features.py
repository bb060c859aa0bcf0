"""Features of one model on one dataset, through :func:`transferlab.extract` and its FeatureBanks.

With a ``cache_dir`` the bank is ``cache_dir/data-<key>/<model dir>/``: ``<key>`` hashes the data (see
:class:`~transferlab.front._data.Rows`), the model directory its name (and, for Hugging Face models, the
pooling). extract itself checks the rest (weights hash, adapter, data fingerprint), resumes an interrupted bank
from its watermark and returns a complete one without a forward pass. ``cache_dir`` is therefore an ordinary
tree of banks (``tl.score_pool(cache_dir)`` reads it). Without ``cache_dir`` (or for a plain function, which
has no weights to fingerprint) the bank is in memory.

A Hugging Face bank row holds every hidden state pooled, side by side (:mod:`transferlab.front._hf`); the
states are handed out as column views of the one bank, never copied.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from transferlab.bank import FeatureBank
from transferlab.extract import extract
from transferlab.front._data import Rows
from transferlab.front._models import Encoder, cache_dirname

__all__ = ["Features", "features_of"]


@dataclass
class Features:
    """states: one (N, W) array per stored hidden state (a single one for models with one output); logits:
    (N, Z) source logits or None; labels: the bank's int64 labels; seconds: wall-clock of this call's
    extraction (near zero when ``cached``); path: the bank directory or None (in memory)."""

    states: List[np.ndarray]
    logits: Optional[np.ndarray]
    labels: np.ndarray
    seconds: float
    cached: bool
    path: Optional[str]


def bank_path(enc: Encoder, rows: Rows, cache_dir: Optional[str]) -> Optional[str]:
    """Where the bank of ``enc`` on ``rows`` lives in ``cache_dir`` (None: kept in memory)."""
    if cache_dir is None or not enc.cacheable:
        return None
    return os.path.join(os.fspath(cache_dir), f"data-{rows.key}", cache_dirname(enc.model_id))


def _complete(path: Optional[str]) -> bool:
    try:
        return path is not None and FeatureBank.is_bank(path) and bool(FeatureBank.status(path)["complete"])
    except ValueError:  # a corrupted meta.json: extract says what is wrong with it
        return False


def features_of(enc: Encoder, rows: Rows, *, cache_dir: Optional[str], batch_size: int, device: str,
                progress: bool) -> Features:
    """Extract (or read back) the features of ``enc`` on ``rows``."""
    out = bank_path(enc, rows, cache_dir)
    cached = _complete(out)
    t0 = time.perf_counter()
    try:
        bank = extract(enc.module, enc.feed, out, adapter=enc.adapter, batch_size=batch_size,
                       device=enc.device or device, model_id=enc.model_id, dataset_id=f"data-{rows.key}",
                       preprocessing=enc.preprocessing, progress=progress)
    except Exception as e:
        e.add_note(f"rank_models: while extracting model {enc.name!r}" + (f" into {out}" if out else ""))
        raise
    seconds = time.perf_counter() - t0
    n, d = bank.n, bank.d
    if d % enc.n_states:
        raise ValueError(f"{bank.path}: {d} features cannot be {enc.n_states} hidden states of equal width; "
                         "delete the directory and rank again")
    w = d // enc.n_states
    states = [bank.features[:, i * w:(i + 1) * w] for i in range(enc.n_states)]
    if n != rows.n:
        raise ValueError(f"model {enc.name!r}: the bank holds {n} rows but data has {rows.n}")
    return Features(states, bank.logits, np.asarray(bank.labels), seconds, cached, bank.path)
