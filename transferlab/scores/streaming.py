"""Streaming states of the scores: a bank larger than memory, or split across workers, gives the
number of the one-shot call. The protocol (passes, ``update``/``merge``/``fork``/``end_pass``/
``compute``) is in ``_stream.py``; ``run`` drives it:

    tl.scores.streaming.run("logme", bank_memmap, labels)              # row blocks, every pass
    tl.scores.streaming.run("sfda", lambda: my_chunks(), a=5.0)          # a chunk factory, one call per pass

    state = tl.scores.streaming.stream("logme")   # or LogMEStream()
    for X_chunk, y_chunk in bank:                  # any chunk sizes
        state.update(X_chunk, y_chunk)
    other = LogMEStream().update(X_rest, y_rest)   # e.g. on another worker
    state.merge(other).compute()                   # == tl.logme(all rows, all labels) (to ~1e-12)

Every built-in score has a state (``available_streams()``): the Gram family here (LogME, H-score,
regularised H-score: one pass), LEEP (two passes) and NCE (one) in ``_stream_leep``, SFDA (three
passes), the linear probe (one pass per L-BFGS evaluation), GBC, TransRate, NLEEP, PARC (two
passes each at most) in ``_stream_<score>``, and kNN (``_stream_knn``: row blocks of the bank as
queries against the whole bank, min-merged; built over the bank itself).

The Gram family's states hold the same sufficient statistics, accumulated through the Gram seam (the ``lda`` kernels) about a fixed
shift ``a`` (the mean of the first chunk: it keeps the Gram accurate when the features share a large
offset): n, per-label counts and sums of ``u = x - a``, ``G = sum u u^T``, and for the regularised
H-score ``sum |u|^4`` and ``sum |u|^2 u``. Merging re-expresses the other state about this state's
shift exactly (binomial expansions, no approximation), so any merge order gives the same statistics
up to float64 rounding. Memory: O(D^2 + C D), independent of N.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Tuple

import numpy as np

from . import _gram
from .. import _backend, _blocks
from .._arrays import as_matrix
from ._stream import ScoreStream, available_streams, register_stream, stream
from .hscore import _warn_saturation, hscore_from_stats, reg_hscore_from_stats
from .logme import COMPATS, logme_from_stats

__all__ = ["ScoreStream", "GramStream", "LogMEStream", "HScoreStream", "RegHScoreStream", "LeepStream", "NceStream",
           "SFDAStream", "LinearProbeStream", "GBCStream", "TransRateStream", "NLEEPStream", "PARCStream",
           "KnnLooStream", "stream", "available_streams", "run"]


class GramStream(ScoreStream):
    """Sufficient statistics of the Gram-family scores over all rows seen so far (one pass)."""

    # ------------------------------------------------------------------ accumulation
    def _reset_pass(self) -> None:
        self.shift: Optional[np.ndarray] = None
        self.gram: Optional[np.ndarray] = None  # sum u u^T, u = x - shift
        self.col_sum: Optional[np.ndarray] = None  # sum u
        self.sq_u: Optional[np.ndarray] = None  # sum |u|^2 u
        self.fourth = 0.0  # sum |u|^4
        self._counts = np.zeros(0, dtype=np.int64)
        self._sums = np.zeros((0, 0))

    def _update(self, m, slots) -> None:
        mat = _backend.to_host(m)  # the Gram seam works on the host
        if self.shift is None:
            self._start(mat.d, mat.to_float64_host().mean(axis=0))
        self._counts, self._sums = self._grow(self._counts), self._grow(self._sums)
        counts, sums = _gram.class_sums(mat, slots.astype(np.int32), len(self.labels), shift=self.shift)
        self._counts += counts
        self._sums += sums
        self.gram += _gram.gram(mat, shift=self.shift)
        self.col_sum += sums.sum(axis=0)
        sq = _gram.row_sq_norms(mat, shift=self.shift)
        self.fourth += float(np.sum(sq * sq))
        _, s2 = _gram.class_sums(mat, np.zeros(mat.n, dtype=np.int32), 1, shift=self.shift, row_weight=sq)
        self.sq_u += s2[0]

    def _merge(self, other: "GramStream", slots: np.ndarray) -> None:
        if self.shift is None:
            self._start(other.d, other.shift.copy())
        # Rows of ``other`` about this shift: u = v + delta, v = x - other.shift.
        delta = other.shift - self.shift
        n, s, G = other.n, other.col_sum, other.gram
        dd = float(delta @ delta)
        ds = float(delta @ s)
        sum_sq = float(np.trace(G))
        Gd = G @ delta
        self.fourth += (other.fourth + 4.0 * float(delta @ other.sq_u) + 4.0 * float(delta @ Gd)
                        + 2.0 * dd * sum_sq + 4.0 * dd * ds + n * dd * dd)
        self.sq_u += other.sq_u + 2.0 * Gd + dd * s + delta * sum_sq + 2.0 * delta * ds + n * dd * delta
        self.gram += G + np.outer(delta, s) + np.outer(s, delta) + n * np.outer(delta, delta)
        self.col_sum += s + n * delta
        self._counts, self._sums = self._grow(self._counts), self._grow(self._sums)
        np.add.at(self._counts, slots, other._counts)
        np.add.at(self._sums, slots, other._sums + other._counts[:, None] * delta)

    # ------------------------------------------------------------------ statistics for compute()
    def _sorted(self):
        """(counts, sums of u) in sorted label order, as np.unique orders them in the one-shot scores."""
        idx = self.sorted_slots(self._counts)
        if idx.size < 2:
            raise ValueError(f"need at least 2 classes, got {idx.size}")
        if self.n < 2:
            raise ValueError(f"need at least 2 samples, got n_samples={self.n}")
        return self._counts[idx], self._sums[idx]

    def centred(self):
        """(centred Gram, centred class sums, counts, sum |x - mean|^4)."""
        counts, sums = self._sorted()
        n, s, G = self.n, self.col_sum, self.gram
        dm = s / n  # mean - shift
        S = G - np.outer(s, dm)
        S = (S + S.T) / 2.0
        dd = float(dm @ dm)
        fourth = (self.fourth - 4.0 * float(dm @ self.sq_u) + 4.0 * float(dm @ (G @ dm))
                  + 2.0 * dd * float(np.trace(G)) - 4.0 * dd * float(dm @ s) + n * dd * dd)
        return S, sums - counts[:, None] * dm, counts, fourth

    def uncentred(self):
        """(X^T X, class sums of x, counts)."""
        counts, sums = self._sorted()
        a, s = self.shift, self.col_sum
        G = self.gram + np.outer(a, s) + np.outer(s, a) + self.n * np.outer(a, a)
        return (G + G.T) / 2.0, sums + counts[:, None] * a, counts

    # ------------------------------------------------------------------ helpers
    def _start(self, d: int, shift: np.ndarray) -> None:
        self.shift = np.asarray(shift, dtype=np.float64)
        self.gram = np.zeros((d, d))
        self.col_sum = np.zeros(d)
        self.sq_u = np.zeros(d)
        self._sums = np.zeros((len(self.labels), d))
        self._counts = np.zeros(len(self.labels), dtype=np.int64)


@register_stream("logme")
class LogMEStream(GramStream):
    """Streaming :func:`transferlab.logme` (``compat`` as there)."""

    def __init__(self, compat: str = "exact") -> None:
        if compat not in COMPATS:
            raise ValueError(f"compat must be one of {COMPATS}, got {compat!r}")
        super().__init__(compat=compat)

    def _compute(self) -> float:
        G, sums, counts = self.uncentred()
        return logme_from_stats(G, sums, counts, self.n, self.params["compat"])


@register_stream("hscore")
class HScoreStream(GramStream):
    """Streaming :func:`transferlab.hscore` (warns when N <= D, as the one-shot score does)."""

    def _compute(self) -> float:
        S, sums, counts, _ = self.centred()
        _warn_saturation(self.n, self.d, "hscore")
        return hscore_from_stats(S, sums, counts)


@register_stream("reg_hscore")
class RegHScoreStream(GramStream):
    """Streaming :func:`transferlab.reg_hscore`."""

    def _compute(self) -> float:
        S, sums, counts, fourth = self.centred()
        return reg_hscore_from_stats(S, sums, counts, fourth, self.n)


# ------------------------------------------------------------------------------ the driver

Source = Any  # an array-like bank (with labels) or a callable returning an iterable of (x, labels) chunks


def run(score: Any, source: Source, labels: Any = None, *, chunk_rows: Optional[int] = None, **params: Any) -> float:
    """Stream a whole score: every pass of ``score`` (a name, or a fresh state) over ``source``.

    ``source``: the bank's features (or source probabilities) in any form the scores accept, e.g. a
    read-only ``np.memmap``, read ``chunk_rows`` rows at a time (default: about 64 MiB of rows), with
    ``labels``; or a zero-argument callable returning an iterable of ``(x_chunk, labels_chunk)``,
    called once per pass (it must give the same rows every time). ``params`` go to the state.
    ``"knn_loo"``'s state is built over the bank itself (``KnnLooStream(source, labels, **params)``:
    each chunk's rows are queries against the whole bank), so ``source`` must then be an array.
    """
    from ._stream import _STREAMS

    if isinstance(score, str) and getattr(_STREAMS.get(score), "over_bank", False):
        st = _STREAMS[score](source, labels, **params)  # built over the reference bank itself (knn_loo)
    else:
        st = stream(score, **params) if isinstance(score, str) else score
    if not isinstance(st, ScoreStream):
        raise TypeError(f"score must be a score name or a streaming state, got {type(score).__name__}")
    if params and not isinstance(score, str):
        raise TypeError("pass options to the state's constructor, not to run(), when score is a state")
    chunks = _chunk_factory(source, labels, chunk_rows)
    while not st.complete:
        for x, y in chunks():
            st.update(x, y)
        st.end_pass()
    return st.compute()


def _chunk_factory(source: Source, labels: Any, chunk_rows: Optional[int]) -> Callable[[], Iterable[Tuple[Any, Any]]]:
    if callable(source) and not hasattr(source, "shape"):
        if labels is not None:
            raise TypeError("labels come from the chunks when source is a chunk factory; pass labels=None")
        return source
    if labels is None:
        raise TypeError("labels are required when source is an array")
    n = len(labels)
    if getattr(source, "shape", (n,))[0] != n:
        raise ValueError(f"labels has length {n} but the source has {source.shape[0]} rows")
    if chunk_rows is None:
        width = int(np.prod(source.shape[1:])) if len(getattr(source, "shape", ())) > 1 else 1
        chunk_rows = max(1, (64 << 20) // max(1, 8 * width))
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be an int >= 1, got {chunk_rows!r}")
    step = int(chunk_rows)
    # A memory-mapped bank: the pages of a chunk are dropped from this process once the state has
    # consumed it (the shared block reader's release), so a pass peaks at about one chunk, not the bank.
    mapped = as_matrix(source, "features") if _blocks.is_mapped(source) else None

    def chunks():
        for a in range(0, n, step):
            yield source[a : a + step], labels[a : a + step]
            if mapped is not None:
                _blocks.release(mapped, a, a + step)

    return chunks


from ._stream_leep import LeepStream, NceStream  # noqa: E402  (registers "leep" and "nce")
from ._stream_sfda import SFDAStream  # noqa: E402  (registers "sfda")
from ._stream_linear_probe import LinearProbeStream  # noqa: E402  (registers "linear_probe")
from ._stream_gbc import GBCStream  # noqa: E402,F401  (registers 'gbc')
from ._stream_transrate import TransRateStream  # noqa: E402,F401  (registers 'transrate')
from ._stream_nleep import NLEEPStream  # noqa: E402,F401  (registers 'nleep')
from ._stream_parc import PARCStream  # noqa: E402,F401  (registers 'parc')
from ._stream_knn import KnnLooStream  # noqa: E402  (registers the knn_loo stream)
