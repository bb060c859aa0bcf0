"""Row blocks of a bank under a memory budget: the one reader every chunked path goes through.

Why: the pages of a ``np.memmap`` that a pass touches count in the process RSS until they are
unmapped, so reading an 8 GB bank block by block still peaks at ~8 GB. :func:`blocks` hands out
zero-copy row slices and, once the consumer has finished with a block of a memory-mapped bank,
drops its pages from this process (``madvise(MADV_DONTNEED)`` on the page-aligned range; the
file's pages stay in the kernel's page cache, they just stop counting against us). Only
read-only or shared mappings are released: a copy-on-write (``mode="c"``) mapping would lose the
caller's private edits, so it is left alone.

The budget: a score called with ``max_memory=`` plans its block rows once with :func:`plan`
(fixed state such as a D x D Gram first, then as many rows as the rest holds) and attaches the
resulting :class:`~transferlab.core.arrays.Budget` to its matrix (``m.with_budget(budget)``); the
chunked paths (``_gram.row_blocks``, the ``kernels.lda`` and LEEP kernels, the NaN scan, SFDA's
prediction passes) read ``m.budget``. A matrix without one (``max_memory=None``) keeps every path's
historical default. On the CPU the chunked kernels accumulate bitwise, so the result does not depend
on the budget.
"""
from __future__ import annotations

import functools
import mmap
import os
import re
from typing import Any, Iterator, Optional, Tuple

import numpy as np

from transferlab.core.arrays import UNBUDGETED, Budget, Matrix

__all__ = ["Budget", "UNBUDGETED", "parse_max_memory", "plan_rows", "plan", "block_rows", "blocks", "kernel_blocks",
           "f64_blocks", "release", "take", "format_bytes", "checks_max_memory", "label_bytes"]

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_PATTERN = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*$")

def parse_max_memory(value: Any, name: str = "max_memory") -> Optional[int]:
    """Bytes of a ``max_memory=`` argument: None, a positive int (or integral float, e.g. 1.5e9), or a string like "2GB" / "512MiB"
    (decimal kB/MB/GB/TB, binary KiB/MiB/GiB/TiB, case-insensitive)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int number of bytes or a string like '2GB', got {value!r}")
    if isinstance(value, (int, np.integer)):
        out = int(value)
    elif isinstance(value, (float, np.floating)):  # 1.5e9 is a size; 2.5 bytes, nan or inf are not
        if not (np.isfinite(value) and float(value).is_integer()):
            raise ValueError(f"{name} must be a whole number of bytes, got {value!r}")
        out = int(value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _UNITS:
            raise ValueError(f"{name}={value!r} is not a size: use bytes (int) or a string like '2GB', '512MiB'")
        out = int(float(match.group(1)) * _UNITS[unit])
    else:
        raise TypeError(f"{name} must be an int number of bytes or a string like '2GB', got {type(value).__name__}")
    if out <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return out


def available_memory() -> Optional[int]:
    """Bytes of memory this machine can still give (Linux ``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def plan_rows(max_memory: Any, *, row_bytes: int, state_bytes: int, what: str) -> Optional[int]:
    """Rows per block that fit ``max_memory`` next to a fixed ``state_bytes`` (None: no budget).

    ``row_bytes``: the working memory one row of a block costs (its mapped bytes plus the largest
    per-row temporaries of the passes). Raises ValueError naming the minimum when even the state
    and one row do not fit.
    """
    budget = parse_max_memory(max_memory)
    if budget is None:
        return None
    row_bytes, state_bytes = max(1, int(row_bytes)), max(0, int(state_bytes))
    need = state_bytes + row_bytes
    if budget < need:
        raise ValueError(
            f"max_memory={budget} bytes ({format_bytes(budget)}) is too small for {what}: its fixed state needs "
            f"{format_bytes(state_bytes)} and one row {format_bytes(row_bytes)}; the minimum is {need} bytes "
            f"({format_bytes(need)})"
        )
    return max(1, (budget - state_bytes) // row_bytes)


def plan(max_memory: Any, *, row_bytes: int, state_bytes: int, what: str) -> Budget:
    """The :class:`Budget` of a ``max_memory=`` argument (:func:`plan_rows`; None: unbudgeted)."""
    rows = plan_rows(max_memory, row_bytes=row_bytes, state_bytes=state_bytes, what=what)
    return UNBUDGETED if rows is None else Budget(rows)


def block_rows(m: Matrix, default_bytes: int, bytes_per_value: int = 8) -> int:
    """Rows per block of ``m``: its budget's, else ``default_bytes`` of its rows."""
    if m.budget.rows is not None:
        return m.budget.rows
    return max(1, int(default_bytes) // max(1, bytes_per_value * m.d))


def blocks(m: Matrix, rows: Optional[int] = None, *, default_bytes: int = 32 << 20,
           bytes_per_value: int = 8) -> Iterator[Tuple[int, int, Matrix]]:
    """(start, stop, zero-copy Matrix of rows [start, stop)) over ``m``; the pages of each block of a
    memory-mapped bank are released when the consumer asks for the next block (or stops)."""
    step = int(rows) if rows else block_rows(m, default_bytes, bytes_per_value)
    for s in range(0, m.n, step):
        e = min(m.n, s + step)
        try:
            yield s, e, m.rows(s, e)
        finally:
            release(m, s, e)


def kernel_blocks(m: Matrix) -> Iterator[Tuple[int, int, Matrix]]:
    """Row blocks for a compiled kernel that accumulates across calls: the whole bank in one call
    without a budget (the historical path), else the budget's blocks (pages released)."""
    rows = m.budget.rows
    if rows is None or rows >= m.n:
        yield 0, m.n, m
        return
    yield from blocks(m, rows)


def f64_blocks(m: Matrix, rows: Optional[int] = None, *, default_bytes: int = 32 << 20
               ) -> Iterator[Tuple[int, int, np.ndarray]]:
    """(start, stop, float64 copy of rows [start, stop)): never a view of the caller's rows."""
    for s, e, blk in blocks(m, rows, default_bytes=default_bytes):
        out = blk.to_float64_host()
        if m.device == "cpu" and np.may_share_memory(out, m.data):
            out = out.copy()  # float64 input: the consumer may modify the block in place
        yield s, e, out


# ---------------------------------------------------------------------------- page release


def take(m: Matrix, index: np.ndarray) -> Matrix:
    """Rows at ``index`` (a copy), like ``Matrix.take``; rows of a memory-mapped file are read with
    ``os.pread`` instead of through the mapping. Why: a gather touching scattered rows of a map
    faults in whole large folios around each row (fault-around), so 1000 rows drawn from an 8 GB
    bank would map gigabytes; reads through the file cost only the rows.
    """
    import os

    index = np.asarray(index, dtype=np.int64).reshape(-1)
    mm = _file_map(m.data) if m.device == "cpu" else None
    if mm is None or index.size == 0:
        return m.take(index)
    row_bytes = m.d * m.data.itemsize
    out = np.empty((index.size, m.d), dtype=m.data.dtype)
    start = mm.offset + (m.data.ctypes.data - mm.ctypes.data)  # file offset of row 0
    try:
        fd = os.open(mm.filename, os.O_RDONLY)
    except OSError:  # the file is gone or unreadable: gather through the mapping
        return m.take(index)
    try:
        for r, i in enumerate(index.tolist()):
            buf = os.pread(fd, row_bytes, start + i * m.data.strides[0])
            if len(buf) != row_bytes:  # pragma: no cover - a file truncated under us
                raise OSError(f"short read of row {i} from {mm.filename}")
            out[r] = np.frombuffer(buf, dtype=m.data.dtype)
    finally:
        os.close(fd)
    return Matrix(out, "cpu", m.dtype, m.name, m.budget)


def _file_map(a: Any) -> Optional[np.memmap]:
    """The file-backed np.memmap ``a`` is a row-major view of (unit inner stride), if any."""
    obj = a
    while obj is not None:
        if isinstance(obj, np.memmap) and getattr(obj, "filename", None) and getattr(obj, "_mmap", None) is not None:
            ok = (a.ndim == 2 and a.strides[1] == a.itemsize and a.strides[0] >= a.shape[1] * a.itemsize
                  and getattr(obj, "mode", "r") != "c")  # private edits live only in the mapping
            return obj if ok else None
        obj = getattr(obj, "base", None)
    return None


def _mapping(a: Any) -> Optional[mmap.mmap]:
    """The mmap behind a numpy array (following ``.base``), if it may be released."""
    obj, seen = a, 0
    while obj is not None and seen < 64:
        if isinstance(obj, np.memmap):
            mm = getattr(obj, "_mmap", None)
            if mm is not None:
                # Copy-on-write mappings hold the caller's private edits: dropping them would lose them.
                return None if getattr(obj, "mode", "r") == "c" else mm
        if isinstance(obj, mmap.mmap):
            return None  # a raw mapping of unknown access mode: leave it
        obj = getattr(obj, "base", None)
        seen += 1
    return None


def is_mapped(a: Any) -> bool:
    """True when ``a`` is a numpy view of a memory mapping whose pages :func:`release` may drop."""
    return isinstance(a, np.ndarray) and _mapping(a) is not None


def release(m: Matrix, start: int = 0, stop: Optional[int] = None) -> None:
    """Drop this process's pages of rows [start, stop) of a memory-mapped host bank (no-op for
    anything else). Rows read later are simply faulted in again from the page cache or the file."""
    if m.device != "cpu" or not hasattr(m.data, "base"):
        return
    mm = _mapping(m.data)
    if mm is None or getattr(mm, "closed", False):
        return
    stop = m.n if stop is None else min(int(stop), m.n)
    if stop <= start:
        return
    try:
        base = np.frombuffer(mm, dtype=np.uint8, count=1).ctypes.data
    except (ValueError, TypeError, BufferError):
        return
    blk = m.data[start:stop]
    lo = blk.ctypes.data
    extent = (blk.shape[0] - 1) * blk.strides[0]
    lo, hi = min(lo, lo + extent), max(lo, lo + extent) + blk.shape[1] * blk.itemsize
    page = mmap.PAGESIZE
    first = max(0, ((lo - base) // page) * page)
    last = min(len(mm), hi - base)
    if last <= first:
        return
    try:
        mm.madvise(mmap.MADV_DONTNEED, first, last - first)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - platforms without madvise
        pass


# ---------------------------------------------------------------------------- the max_memory= argument


def checks_max_memory(fn):
    """Decorator of a public score taking ``max_memory=``: checks the value before anything else
    (TypeError / ValueError per BAD_INPUTS.md); the score then plans its :class:`Budget` itself."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        parse_max_memory(kwargs.get("max_memory"))
        return fn(*args, **kwargs)

    return wrapper


def label_bytes(n: int) -> int:
    """Working memory of the label remapping (np.unique's sort, inverse and counts, int32 codes)."""
    return 28 * int(n)
