"""The CPU kernels' thread count: ``transferlab.set_num_threads`` / ``transferlab.threads``.

Resolution order: :func:`set_num_threads` (or the :func:`threads` context), then the
``TRANSFERLAB_NUM_THREADS`` environment variable, then OpenMP's default (0).
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional

from transferlab import kernels

_num_threads: Optional[int] = None


def num_threads() -> int:
    """Thread count passed to CPU kernels (0 = OpenMP's default)."""
    if _num_threads is not None:
        return _num_threads
    env = os.environ.get("TRANSFERLAB_NUM_THREADS")
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"TRANSFERLAB_NUM_THREADS must be an integer, got {env!r}") from None
        if value < 0:
            raise ValueError(f"TRANSFERLAB_NUM_THREADS must be >= 0, got {value}")
        return value
    return 0


def effective_threads() -> int:
    """The thread count the kernels will actually use."""
    n = num_threads()
    return n if n > 0 else int(kernels.cpu_module().max_threads())


def set_num_threads(n: Optional[int]) -> None:
    """Set the CPU kernels' thread count for this process (None or 0: OpenMP's default)."""
    global _num_threads
    if n is not None and (not isinstance(n, int) or n < 0):
        raise ValueError(f"num_threads must be a non-negative int or None, got {n!r}")
    _num_threads = n


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Temporarily run the CPU kernels on ``n`` threads."""
    global _num_threads
    old = _num_threads
    set_num_threads(n)
    try:
        yield
    finally:
        _num_threads = old
