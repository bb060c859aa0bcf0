"""Streaming LogME / H-score / regularised H-score: equal to the one-shot scores for chunk sizes
{1, 7, 1000, N} and any merge order; labels first seen late; bad use."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from transferlab import hscore, logme, reg_hscore
from transferlab.scores.streaming import HScoreStream, LogMEStream, RegHScoreStream

from _score_checks import class_data, digits_features, rel

STREAMS = [(LogMEStream, logme, {}), (LogMEStream, logme, {"compat": "thuml"}), (HScoreStream, hscore, {}),
           (RegHScoreStream, reg_hscore, {})]
ONE_SHOT_REL = 1e-9


def _chunks(X, y, size):
    return [(X[s : s + size], y[s : s + size]) for s in range(0, len(y), size)]


def _data(n=1200, d=12, c=4, offset=20.0):
    X, y = class_data(n=n, d=d, c=c, sep=1.0, seed=11)
    return (X + offset).astype(np.float32), y  # a common offset: the shift keeps the Gram accurate


@pytest.mark.parametrize("stream,oneshot,kw", STREAMS)
@pytest.mark.parametrize("size", [1, 7, 1000, None])
def test_chunked_equals_one_shot(stream, oneshot, kw, size):
    X, y = _data(n=300 if size == 1 else 1200)
    want = oneshot(X, y, **kw)
    st = stream(**kw)
    for Xc, yc in _chunks(X, y, size or len(y)):
        st.update(Xc, yc)
    assert rel(st.compute(), want) < ONE_SHOT_REL


@pytest.mark.parametrize("stream,oneshot,kw", STREAMS)
def test_any_merge_order(stream, oneshot, kw):
    X, y = _data()
    want = oneshot(X, y, **kw)
    parts = [stream(**kw).update(Xc, yc) for Xc, yc in _chunks(X, y, 170)]
    for order in (range(len(parts)), reversed(range(len(parts))), np.random.default_rng(1).permutation(len(parts))):
        total = stream(**kw)
        for i in order:
            total.merge(parts[i])
        assert rel(total.compute(), want) < ONE_SHOT_REL
    # Tree merge: pairs of pairs.
    while len(parts) > 1:
        parts = [parts[i].merge(parts[i + 1]) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    assert rel(parts[0].compute(), want) < ONE_SHOT_REL


def test_labels_seen_late_strings_and_digits():
    H, y = digits_features()
    names = np.array([f"class-{k}" for k in range(10)])[y]
    order = np.argsort(y, kind="stable")  # every chunk holds one or two classes only
    for stream, oneshot in [(LogMEStream, logme), (RegHScoreStream, reg_hscore)]:
        st = stream()
        for s in range(0, len(y), 250):
            st.update(H[order[s : s + 250]], names[order[s : s + 250]])
        assert rel(st.compute(), oneshot(H, names)) < ONE_SHOT_REL


def test_memmap_blocks(tmp_path):
    X, y = _data()
    np.save(tmp_path / "bank.npy", X)
    mm = np.load(tmp_path / "bank.npy", mmap_mode="r")
    st = LogMEStream()
    for s in range(0, len(y), 333):
        st.update(mm[s : s + 333], y[s : s + 333])
    assert rel(st.compute(), logme(X, y)) < ONE_SHOT_REL


def test_n_below_d_and_warning():
    X, y = class_data(n=60, d=100, c=3, sep=1.0, seed=2)
    st = LogMEStream().update(X[:25], y[:25]).update(X[25:], y[25:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        want = logme(X, y)
    # N < D: the one-shot path eigensolves X X^T, the stream X^T X; equal up to that rounding.
    assert rel(st.compute(), want) < 1e-7
    hs = HScoreStream().update(X, y)
    with pytest.warns(UserWarning, match="saturates"):
        hs.compute()


def test_bad_use():
    X, y = _data(n=100)
    with pytest.raises(ValueError, match="n_samples=0"):
        LogMEStream().compute()
    with pytest.raises(ValueError, match="need at least 2 classes"):
        LogMEStream().update(X, np.zeros(100, dtype=int)).compute()
    st = LogMEStream().update(X, y)
    with pytest.raises(ValueError, match="n_features"):
        st.update(X[:, :5], y)
    with pytest.raises(ValueError, match="n_features"):
        st.merge(LogMEStream().update(X[:, :5], y))
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LogMEStream().update(Xn, y)
    with pytest.raises(ValueError, match="compat"):
        LogMEStream(compat="x")
    with pytest.raises(TypeError):
        st.merge(object())
