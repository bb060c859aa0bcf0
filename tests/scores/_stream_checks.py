"""Drivers shared by the streaming-state tests (test_stream_*.py): every pass chunk by chunk, every
pass through worker forks merged in a given order (forks pickled as a worker would send them), and
a read-only memory-mapped bank through ``streaming.run``."""
from __future__ import annotations

import pickle

import numpy as np

from transferlab.scores import streaming

from conftest import digest

MERGE_ORDERS = ["forward", "reverse", "random", "tree"]


def chunks(X, y, size):
    return [(X[s : s + size], y[s : s + size]) for s in range(0, len(y), size)]


def chunked(state, X, y, size):
    """Every pass of ``state`` over ``X`` in chunks of ``size`` rows; the score."""
    while not state.complete:
        for Xc, yc in chunks(X, y, size):
            state.update(Xc, yc)
        state.end_pass()
    return state.compute()


def _tree(parts):
    while len(parts) > 1:
        parts = [parts[i].merge(parts[i + 1]) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    return parts


def merged(state, X, y, size, order, seed=0):
    """Every pass: one fork per chunk (pickled there and back), merged into ``state`` in ``order``."""
    rng = np.random.default_rng(seed)
    while not state.complete:
        parts = [pickle.loads(pickle.dumps(state.fork().update(Xc, yc))) for Xc, yc in chunks(X, y, size)]
        if order == "forward":
            idx = range(len(parts))
        elif order == "reverse":
            idx = reversed(range(len(parts)))
        elif order == "random":
            idx = rng.permutation(len(parts))
        else:
            parts, idx = _tree(parts), [0]
        for i in idx:
            state.merge(parts[i])
        state.end_pass()
    return state.compute()


def memmap_run(tmp_path, name, X, y, chunk_rows, **params):
    """``streaming.run`` on a read-only memmap of ``X``; checks the bank and labels are untouched."""
    path = tmp_path / "bank.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    before = digest(mm, y)
    got = streaming.run(name, mm, y, chunk_rows=chunk_rows, **params)
    assert digest(mm, y) == before
    return got


def late_labels(X, y):
    """Rows sorted by label (each chunk holds one or two classes: labels first seen late) and string labels."""
    order = np.argsort(y, kind="stable")
    names = np.array([f"class-{k:02d}" for k in range(int(y.max()) + 1)])
    return X[order], names[y[order]]
