"""KnnLooStream (transferlab/scores/knn/stream.py): blocks of query rows against the whole bank,
min-merged; bitwise equal to the one-shot knn_loo for any block size and merge order."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import transferlab as tl
from transferlab.scores import streaming
from transferlab.scores.knn.stream import KnnLooStream

from _score_checks import digits_features


def _structured(n=300, d=6, c=4, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    if ties:
        X = rng.integers(0, 3, (n, d)).astype(np.float32)  # duplicates and distance ties
    else:
        X = (rng.standard_normal((n, d)) + 1.2 * y[:, None]).astype(np.float32)
    return X, y


def _want(X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return tl.knn_loo(X, y, return_details=True, **kw)


def _parts(st, X, y, size):
    out = []
    for a in range(0, X.shape[0], size):
        p = st.fork()
        p.update(X[a : a + size], y[a : a + size], start=a)
        out.append(p)
    return out


def _merge(st, parts, order, seed=0):
    if order == "forward":
        for p in parts:
            st.merge(p)
    elif order == "reverse":
        for p in parts[::-1]:
            st.merge(p)
    elif order == "random":
        for i in np.random.default_rng(seed).permutation(len(parts)):
            st.merge(parts[i])
    else:  # tree: pairwise merges of forks, then into the root
        level = list(parts)
        while len(level) > 1:
            level = [level[i].merge(level[i + 1]) if i + 1 < len(level) else level[i]
                     for i in range(0, len(level), 2)]
        st.merge(level[0])
    return st


def _same(res, want):
    assert res.score == want.score
    assert np.array_equal(res.neighbors, want.neighbors) and np.array_equal(res.distances, want.distances)
    assert np.array_equal(res.correct, want.correct) and np.array_equal(res.tie_count, want.tie_count)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("ties", [False, True])
def test_any_block_size_sequential(k, ties):
    X, y = _structured(ties=ties)
    want = _want(X, y, k=k)
    for size in (1, 7, 1000, X.shape[0]):
        st = KnnLooStream(X, y, k=k)
        for a in range(0, X.shape[0], size):
            st.update(X[a : a + size], y[a : a + size])
        _same(st.details(), want)
        assert st.compute() == want.score


@pytest.mark.parametrize("order", ["forward", "reverse", "random", "tree"])
@pytest.mark.parametrize("k", [1, 4])
def test_merge_orders_through_fork_and_pickle(order, k):
    X, y = _structured(n=260, ties=True, seed=2)
    want = _want(X, y, k=k)
    for size in (7, 100):
        st = KnnLooStream(X, y, k=k, max_memory="200KB")
        parts = [pickle.loads(pickle.dumps(p)) for p in _parts(st, X, y, size)]
        _same(_merge(st, parts, order, seed=size).details(), want)


def test_run_on_a_readonly_memmap_with_string_labels_seen_late(tmp_path):
    X, y = _structured(n=400, seed=3)
    labels = np.array(["cat", "dog", "emu", "fox"])[y]
    labels[-3:] = "zebra"  # a class first seen in the last chunk
    np.save(tmp_path / "X.npy", X)
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    before = np.array(mm).tobytes()
    want = _want(X, labels, k=3, metric="cosine")
    for chunk in (1, 7, 1000):
        assert streaming.run("knn_loo", mm, labels, k=3, metric="cosine", chunk_rows=chunk) == want.score
    st = streaming.stream("knn_loo", features=mm, labels=labels, k=3, metric="cosine")
    part = pickle.loads(pickle.dumps(st.fork()))
    assert X[:100].tobytes() not in pickle.dumps(st.fork())  # the memmap travels as its path ...
    assert isinstance(part._bank.data, np.memmap)  # ... and is mapped again on the other side
    part.update(mm[:200], labels[:200], start=0)
    st.update(mm[200:], labels[200:], start=200)
    _same(st.merge(part).details(), want)
    assert np.array(mm).tobytes() == before


def test_queries_subset_and_given_order():
    X, y = _structured(n=300, seed=4, ties=True)
    full = _want(X, y, k=2)
    rows = np.array([250, 3, 77, 78, 299, 0])
    st = KnnLooStream(X, y, k=2, queries=rows)
    for part in _parts(st, X, y, 50):
        st.merge(part)
    res = st.details()
    assert np.array_equal(res.rows, rows)
    assert np.array_equal(res.neighbors, full.neighbors[rows]) and np.array_equal(res.correct, full.correct[rows])
    assert res.score == tl.knn_loo(X, y, k=2, queries=rows)
    drawn = streaming.run("knn_loo", X, y, k=2, queries=40, seed=9, chunk_rows=64)
    assert drawn == tl.knn_loo(X, y, k=2, queries=40, seed=9)


def test_real_features():
    X, y = digits_features()
    want = _want(X, y, k=5)
    st = KnnLooStream(X, y, k=5, max_memory="2MB")
    parts = _parts(st, X, y, 500)
    _same(_merge(st, parts, "random").details(), want)


def test_bad_use():
    X, y = _structured(n=120, seed=5)
    st = KnnLooStream(X, y, k=1)
    with pytest.raises(ValueError, match="not covered"):
        st.update(X[:60], y[:60]).compute()
    with pytest.raises(ValueError, match="n_features=5"):
        st.update(X[60:, :5], y[60:])
    with pytest.raises(ValueError, match="differ from the bank's rows"):
        st.update(X[60:] + 1.0, y[60:])
    with pytest.raises(ValueError, match="labels of rows"):
        st.update(X[60:], (y[60:] + 1) % 4)
    with pytest.raises(ValueError, match="overlap"):
        st.update(X[:10], y[:10], start=0)
    with pytest.raises(ValueError, match="run past"):
        st.update(X[:10], y[:10], start=115)
    a, b = st.fork(), st.fork()
    a.update(X[60:90], y[60:90], start=60)
    b.update(X[80:100], y[80:100], start=80)
    with pytest.raises(ValueError, match="disjoint"):
        a.merge(b)
    with pytest.raises(ValueError, match="different options"):
        st.merge(KnnLooStream(X, y, k=1).update(X[60:], y[60:], start=60))  # another bank (not a fork)
    with pytest.raises(TypeError, match="built over the reference bank"):
        streaming.stream("knn_loo", k=1)
    with pytest.raises(ValueError, match="need at least 2 classes"):
        KnnLooStream(X, np.zeros(120))
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf in 1 row"):
        KnnLooStream(Xn, y)
    with pytest.raises(ValueError, match="k must be in"):
        KnnLooStream(X, y, k=120)
    with pytest.raises(ValueError, match="max_memory"):
        KnnLooStream(X, y, max_memory="1KB")
