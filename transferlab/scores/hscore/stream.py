"""Streaming H-score and regularised H-score: the Gram family's one-pass sufficient statistics
(``GramStream``, with the fourth moments for the regularised form), then the one-shot's algebra."""
from __future__ import annotations

from transferlab.scores._stream_parts import GramStream
from transferlab.scores.hscore.one_shot import _warn_saturation, hscore_from_stats, reg_hscore_from_stats

__all__ = ["HScoreStream", "RegHScoreStream"]


class HScoreStream(GramStream):
    """Streaming :func:`transferlab.hscore` (warns when N <= D, as the one-shot score does)."""

    def _compute(self) -> float:
        S, sums, counts, _ = self.centred()
        _warn_saturation(self.n, self.d, "hscore")
        return hscore_from_stats(S, sums, counts)


class RegHScoreStream(GramStream):
    """Streaming :func:`transferlab.reg_hscore`."""

    def _compute(self) -> float:
        S, sums, counts, fourth = self.centred()
        return reg_hscore_from_stats(S, sums, counts, fourth, self.n)
