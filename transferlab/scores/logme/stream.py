"""Streaming LogME: the Gram family's one-pass sufficient statistics (``GramStream``), then the
one-shot's algebra on them (``logme_from_stats``).

With ``task="regression"`` / ``"multilabel"`` the labels of each chunk are targets / indicator columns and
the state sums X^T X, Y^T X and |y_t|^2 instead (one pass, merged by addition): ``compute()`` equals
``logme(..., task=task)`` on the rows seen, to rounding."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from transferlab.core.arrays import as_matrix, as_targets, check_task
from transferlab.core.inputs import check_finite
from transferlab.core import devices
from transferlab.scores import _gram
from transferlab.scores._stream_parts import GramStream
from transferlab.scores.logme.one_shot import COMPATS, logme_from_stats, target_sums

__all__ = ["LogMEStream"]


class LogMEStream(GramStream):
    """Streaming :func:`transferlab.logme` (``compat`` and ``task`` as there)."""

    def __init__(self, compat: str = "exact", task: str = "classification") -> None:
        if compat not in COMPATS:
            raise ValueError(f"compat must be one of {COMPATS}, got {compat!r}")
        from transferlab.scores.registry import require_task

        self._task = require_task("logme", check_task(task))
        more = {} if task == "classification" else {"task": task}  # default params as before (old pickles merge)
        super().__init__(compat=compat, **more)

    def _reset_pass(self) -> None:
        super()._reset_pass()
        self._tg: Optional[np.ndarray] = None  # X^T X (uncentred), regression / multilabel only
        self._ty: Optional[np.ndarray] = None  # Y^T X (T, D)
        self._tsq: Optional[np.ndarray] = None  # |y_t|^2 (T,)
        self._tpos: Optional[np.ndarray] = None  # multilabel: positives per column (both values needed)

    def update(self, x: Any, labels: Any) -> "LogMEStream":
        if getattr(self, "_task", "classification") == "classification":
            return super().update(x, labels)
        if self.complete:
            raise ValueError("LogMEStream: every pass has ended; call compute()")
        m = as_matrix(x, "features")
        # A chunk is checked as regression targets (shape, finiteness); 0/1 per chunk, both values at compute().
        Y = as_targets(labels, "regression", m.n, "labels").values
        if self._task == "multilabel" and not np.all((Y == 0.0) | (Y == 1.0)):
            raise ValueError("labels for task='multilabel' must be a 0/1 indicator matrix (n_samples, n_labels)")
        check_finite(m, "raise")
        if self.d is None:
            self.d = m.d
        elif m.d != self.d:
            raise ValueError(f"features chunk has n_features={m.d}, earlier chunks had {self.d}")
        if self._ty is not None and Y.shape[1] != self._ty.shape[0]:
            raise ValueError(f"labels chunk has {Y.shape[1]} target columns, earlier chunks had {self._ty.shape[0]}")
        mat = devices.to_host(m)
        self._add(_gram.gram(mat), target_sums(mat, Y), np.einsum("ij,ij->j", Y, Y), Y.sum(axis=0))
        self.n += m.n
        return self

    def _add(self, G: np.ndarray, ty: np.ndarray, tsq: np.ndarray, tpos: np.ndarray) -> None:
        if self._tg is None:
            self._tg, self._ty, self._tsq, self._tpos = G.copy(), ty.copy(), tsq.copy(), tpos.copy()
        else:
            self._tg += G
            self._ty += ty
            self._tsq += tsq
            self._tpos += tpos

    def _merge(self, other: "LogMEStream", slots: np.ndarray) -> None:
        if getattr(self, "_task", "classification") == "classification":
            return super()._merge(other, slots)
        if self._ty is not None and other._ty is not None and other._ty.shape != self._ty.shape:
            raise ValueError(f"cannot merge states with {self._ty.shape[0]} and {other._ty.shape[0]} target columns")
        self._add(other._tg, other._ty, other._tsq, other._tpos)

    def _compute(self) -> float:
        if getattr(self, "_task", "classification") == "classification":
            G, sums, counts = self.uncentred()
            return logme_from_stats(G, sums, counts, self.n, self.params["compat"])
        if self.n < 2:
            raise ValueError(f"need at least 2 samples, got n_samples={self.n}")
        if self._task == "multilabel":
            bad = np.flatnonzero((self._tpos == 0) | (self._tpos == self.n))
            if bad.size:
                raise ValueError(f"labels for task='multilabel': column {int(bad[0])} holds only one value over the "
                                 "rows seen; every label needs at least one positive and one negative sample")
        return logme_from_stats(self._tg, self._ty, self._tsq, self.n, self.params["compat"])
