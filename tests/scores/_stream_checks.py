"""Checks every streaming state must pass: equal to the one-shot score for chunk sizes {1, 7, 1000, N},
for merge orders forward / reverse / random / tree of pickled worker forks, through ``streaming.run``
on a read-only memmap, with labels first seen late (strings too), and the errors of bad use.
``same(got, want)`` is the equality a score promises (``within(1e-9)`` or bitwise). The check_*
functions run a whole check; ``chunked`` / ``merged`` / ``memmap_run`` / ``late_labels`` are the
drivers for tests that compare the result themselves."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from transferlab.scores import streaming
from transferlab.testing.stream_checks import merge_order

from conftest import digest
from _score_checks import rel

ONE_SHOT_REL = 1e-9
MERGE_ORDERS = ["forward", "reverse", "random", "tree"]


def within(tol=ONE_SHOT_REL):
    def same(got, want):
        assert rel(got, want) < tol, (got, want, rel(got, want))

    return same


def bitwise(got, want):
    assert got == want, (got, want)


def chunks(X, y, size):
    return [(X[s : s + size], y[s : s + size]) for s in range(0, len(y), size)]


def feed(st, parts):
    """Every pass of ``st`` over the same list of (x, labels) chunks; returns compute()."""
    while not st.complete:
        for x, lab in parts:
            st.update(x, lab)
        st.end_pass()
    return st.compute()


def check_chunk_sizes(name, X, y, want, same, sizes=(1, 7, 1000, None), **kw):
    """Chunk sizes 1, 7, 1000 and N (None); inputs never mutated."""
    h = digest(X, y)
    for size in sizes:
        same(feed(streaming.stream(name, **kw), chunks(X, y, size or len(y))), want)
    assert digest(X, y) == h


_combine = merge_order  # the library's own merge orders (transferlab.testing.stream_checks)


def check_merge_orders(name, X, y, want, same, n_parts=5, **kw):
    """Every pass split across pickled worker forks, merged back in each order."""
    bounds = np.linspace(0, len(y), n_parts + 1).astype(int)
    for order in ("forward", "reverse", "random", "tree"):
        st = streaming.stream(name, **kw)
        while not st.complete:
            parts = []
            for a, b in zip(bounds[:-1], bounds[1:]):
                worker = pickle.loads(pickle.dumps(st.fork()))  # sent to a worker ...
                worker.update(X[a:b], y[a:b])
                parts.append(pickle.loads(pickle.dumps(worker)))  # ... and back
            for part in _combine(parts, order):
                st.merge(part)
            st.end_pass()
        same(st.compute(), want)


def check_memmap(name, X, y, want, same, tmp_path, chunk_rows=333, **kw):
    """``streaming.run`` over a read-only memory-mapped bank; the file is unchanged."""
    np.save(tmp_path / "bank.npy", X)
    mm = np.load(tmp_path / "bank.npy", mmap_mode="r")
    h = digest(mm)
    same(streaming.run(name, mm, y, chunk_rows=chunk_rows, **kw), want)
    assert digest(mm) == h


def check_late_string_labels(name, X, y, oneshot, same, chunk=250, **kw):
    """Rows sorted by label (every chunk holds one or two classes) with string labels."""
    names = np.array([f"class-{k:02d}" for k in range(int(y.max()) + 1)])[y]
    order = np.argsort(y, kind="stable")
    same(feed(streaming.stream(name, **kw), chunks(X[order], names[order], chunk)), oneshot(X, names, **kw))


def check_bad_use(name, X, y, **kw):
    """The one-shot's errors for bad rows, and a later pass that does not see the first pass's rows."""
    st = streaming.stream(name, **kw)
    Xn = X.astype(np.float64)
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        st.update(Xn, y)
    st.update(X[:50], y[:50])
    with pytest.raises(ValueError, match="n_features"):
        st.update(X[50:60, :-1], y[50:60])
    with pytest.raises(ValueError, match="n_features"):
        st.merge(streaming.stream(name, **kw).update(X[:5, :-1], y[:5]))
    with pytest.raises(ValueError, match="need at least 2 classes"):
        feed(streaming.stream(name, **kw), [(X, np.zeros(len(y), dtype=int))])
    with pytest.raises(ValueError, match="n_samples=0"):
        streaming.stream(name, **kw).end_pass()
    with pytest.raises(TypeError):
        st.merge(object())
    st = streaming.stream(name, **kw)
    half = len(y) // 2
    st.update(X[:half], y[:half])
    if st.n_passes < 2:  # a one-pass state (e.g. GBC without PCA)
        return
    st.update(X[half:], y[half:])
    st.end_pass()
    with pytest.raises(ValueError, match="not seen in the first pass"):
        st.update(X[:3], np.array([y.max() + 1] * 3))
    st.update(X[:10], y[:10])
    with pytest.raises(ValueError, match="every pass must see the same rows"):
        st.end_pass()
    with pytest.raises(ValueError, match="passes"):
        streaming.stream(name, **kw).update(X, y).compute()


def check_low_precision(name, X, y, oneshot, same, chunk=77, **kw):
    """float16 (numpy) and bfloat16 (torch) chunks give the one-shot score of the same matrix."""
    import torch

    for Xc in (X.astype(np.float16), torch.from_numpy(np.asarray(X, dtype=np.float32)).to(torch.bfloat16)):
        parts = lambda: [(Xc[a : a + chunk], y[a : a + chunk]) for a in range(0, len(y), chunk)]  # noqa: E731
        same(streaming.run(name, parts, **kw), oneshot(Xc, y, **kw))


# ------------------------------------------------------------------ drivers returning the score


def chunked(state, X, y, size):
    """Every pass of ``state`` over ``X`` in chunks of ``size`` rows; the score."""
    return feed(state, chunks(X, y, size))


def merged(state, X, y, size, order, seed=0):
    """Every pass: one fork per chunk (pickled there and back), merged into ``state`` in ``order``."""
    rng = np.random.default_rng(seed)
    while not state.complete:
        parts = [pickle.loads(pickle.dumps(state.fork().update(Xc, yc))) for Xc, yc in chunks(X, y, size)]
        if order == "random":  # a seeded order of its own (the tests pass several seeds)
            parts = [parts[i] for i in rng.permutation(len(parts))]
        else:
            parts = _combine(parts, order)
        for part in parts:
            state.merge(part)
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
