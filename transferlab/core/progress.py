"""The one progress bar of transferlab: tqdm on stderr when installed, a minimal stderr bar otherwise.

Both are shown only on a terminal (tqdm's ``disable=None``; the fallback checks ``isatty``), so logs, CI and
pipes stay clean, and ``bar(False, ...)`` (a caller's ``progress=False`` / ``--no-progress``) returns None.
Used by extract (per model), score_pool (per bank) and the figures of a report (per figure).
"""
from __future__ import annotations

import sys
import time
from typing import Optional

__all__ = ["bar"]


class _SimpleBar:
    """A minimal stderr progress bar for environments without tqdm (shown only on a TTY)."""

    def __init__(self, total: int, initial: int, desc: str):
        self.total, self.n, self.desc = total, initial, desc
        self.on = sys.stderr.isatty()
        self.t0 = time.perf_counter()

    def update(self, k: int = 1) -> None:
        self.n += k
        if self.on:
            frac = self.n / max(1, self.total)
            sys.stderr.write(f"\r{self.desc} [{'#' * int(30 * frac):<30}] {self.n}/{self.total} "
                             f"{time.perf_counter() - self.t0:.1f}s")
            sys.stderr.flush()

    def close(self) -> None:
        if self.on:
            sys.stderr.write("\n")


def bar(enabled: bool, total: int, desc: str, *, unit: str = "it", initial: int = 0) -> Optional[object]:
    """A bar with ``update(k)`` and ``close()``, or None when ``enabled`` is false."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _SimpleBar(total, initial, desc)
    # disable=None: tqdm turns itself off when stderr is not a TTY (logs and CI stay clean).
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False)
