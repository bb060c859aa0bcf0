"""Validation shared by the Gram-family scores (LogME, NLEEP, H-score, GBC, TransRate, PARC, NCE).

One sequence for all of them (BAD_INPUTS.md): features through ``as_matrix``, labels through
``as_labels`` (length checked against the features), NaN/inf rows raised or omitted, then the
minimum sample count, then the two-class minimum; the order makes N = 1 say what the minimum is.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

from .. import _backend, _blocks
from .._arrays import Labels, Matrix, as_labels, as_matrix, check_finite, check_labels_omit


def prepare(features, labels, *, nan_policy: str = "raise", min_samples: int = 2, device: str = "auto",
            name: str = "features", max_memory=None,
            cost: Optional[Callable[[Matrix, Labels], Tuple[int, int]]] = None,
            what: str = "this score") -> Tuple[Matrix, Labels, str]:
    """Validated (matrix, labels, resolved device) of a ``(features, labels)`` score call.

    With ``max_memory`` (inside a score decorated with ``_blocks.honours_max_memory``), ``cost(m,
    labels)`` gives the score's (bytes per row of a block, fixed state bytes) and the block rows are
    fitted to the budget before the first pass (the NaN scan) reads the bank.
    """
    m = as_matrix(features, name)
    lab = as_labels(labels, m.n, "labels", min_classes=1)
    if max_memory is not None:
        row_bytes, state_bytes = cost(m, lab)
        _blocks.fit(max_memory, row_bytes=row_bytes, state_bytes=state_bytes + _blocks.label_bytes(m.n), what=what)
    keep = check_finite(m, nan_policy)
    if keep is not None:
        m = m.take(keep)
        lab = check_labels_omit(lab, keep, min_classes=1)
    if m.n < min_samples:
        raise ValueError(f"need at least {min_samples} samples, got n_samples={m.n}")
    if lab.n_classes < 2:
        raise ValueError(f"need at least 2 classes, got {lab.n_classes}")
    dev = _backend.resolve_device(device, m)
    # The bank goes where the score runs: the Gram seam reads a CUDA bank on its GPU (``_gram``).
    return _backend.place(m, dev), lab, dev
