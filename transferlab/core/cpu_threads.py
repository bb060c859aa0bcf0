"""The CPU kernels' thread count: ``transferlab.set_num_threads`` / ``transferlab.threads``.

Resolution order: :func:`set_num_threads` (or the :func:`threads` context), then the
``TRANSFERLAB_NUM_THREADS`` environment variable, then OpenMP's default (0).

:func:`blas_single_threaded` pins BLAS (numpy's, scikit-learn's) to one thread for the scores whose
bits would otherwise depend on BLAS's thread count (PARC, NLEEP's mixture, the linear probe).
"""
from __future__ import annotations

import contextlib
import os
import threading
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


# BLAS's thread limit is process-wide (threadpoolctl). Calls from several threads share one limit:
# the first in applies it, the last out restores what the process had, so concurrent scores never
# restore under each other (which used to leave the process pinned to one BLAS thread).
_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_LIMIT = None
_BLAS_CONTROLLER = None


@contextlib.contextmanager
def blas_single_threaded() -> Iterator[None]:
    """BLAS limited to one thread inside the block (nothing without threadpoolctl); reentrant and
    thread-safe: the process's own limits are back once every block has exited."""
    global _BLAS_USERS, _BLAS_LIMIT, _BLAS_CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        yield
        return
    with _BLAS_LOCK:
        if _BLAS_USERS == 0:
            if _BLAS_CONTROLLER is None:
                _BLAS_CONTROLLER = ThreadpoolController()  # cached: building one inspects every loaded library
            _BLAS_LIMIT = _BLAS_CONTROLLER.limit(limits=1, user_api="blas")
        _BLAS_USERS += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0:
                _BLAS_LIMIT.restore_original_limits()
                _BLAS_LIMIT = None
