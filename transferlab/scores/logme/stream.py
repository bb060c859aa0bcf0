"""Streaming LogME: the Gram family's one-pass sufficient statistics (``GramStream``), then the
one-shot's algebra on them (``logme_from_stats``)."""
from __future__ import annotations

from transferlab.scores._stream_parts import GramStream
from transferlab.scores.logme.one_shot import COMPATS, logme_from_stats

__all__ = ["LogMEStream"]


class LogMEStream(GramStream):
    """Streaming :func:`transferlab.logme` (``compat`` as there)."""

    def __init__(self, compat: str = "exact") -> None:
        if compat not in COMPATS:
            raise ValueError(f"compat must be one of {COMPATS}, got {compat!r}")
        super().__init__(compat=compat)

    def _compute(self) -> float:
        G, sums, counts = self.uncentred()
        return logme_from_stats(G, sums, counts, self.n, self.params["compat"])
