"""The streaming protocol itself (``transferlab/scores/_stream.py``): passes, forks, merges, the
driver, and the errors that keep a multi-pass run honest. A two-pass toy state (per-class variance
about the class means of the first pass) exercises every rule without depending on a real score."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from transferlab.scores import streaming
from transferlab.scores._stream import ScoreStream


class _TwoPassVariance(ScoreStream):
    """Pass 1: class sums; pass 2: sum of squared deviations from the class means of pass 1."""

    n_passes = 2

    def _reset_pass(self):
        if self.pass_index == 0:
            self.sums = np.zeros((0, self.d or 0))
            self.counts = np.zeros(0, dtype=np.int64)
        self.sq = 0.0

    def _update(self, m, slots):
        x = m.to_float64_host()
        if self.pass_index == 0:
            self.sums = self._grow(self.sums if self.sums.size else np.zeros((0, m.d)))
            self.counts = self._grow(self.counts)
            np.add.at(self.sums, slots, x)
            np.add.at(self.counts, slots, 1)
        else:
            self.sq += float(((x - self.means[slots]) ** 2).sum())

    def _merge(self, other, slots):
        if self.pass_index == 0:
            self.sums = self._grow(self.sums if self.sums.size else np.zeros((0, other.d)))
            self.counts = self._grow(self.counts)
            np.add.at(self.sums, slots, other.sums)
            np.add.at(self.counts, slots, other.counts)
        else:
            self.sq += other.sq

    def _end_pass(self):
        if self.pass_index == 0:
            self.means = self.sums / self.counts[:, None]

    def _compute(self):
        return self.sq / self.n


def _data(n=200, d=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    return rng.standard_normal((n, d)) + y[:, None], y


def _want(X, y):
    return sum(((X[y == c] - X[y == c].mean(axis=0)) ** 2).sum() for c in np.unique(y)) / len(y)


def test_two_passes_chunked_and_driver():
    X, y = _data()
    st = _TwoPassVariance()
    for _ in range(2):
        for a in range(0, 200, 7):
            st.update(X[a : a + 7], y[a : a + 7])
        st.end_pass()
    assert st.complete
    assert st.compute() == pytest.approx(_want(X, y), rel=1e-12)
    assert streaming.run(_TwoPassVariance(), X, y, chunk_rows=33) == pytest.approx(_want(X, y), rel=1e-12)
    assert streaming.run(_TwoPassVariance(), lambda: [(X[:50], y[:50]), (X[50:], y[50:])]) == \
        pytest.approx(_want(X, y), rel=1e-12)


def test_fork_merge_across_workers_and_pickle():
    X, y = _data()
    st = _TwoPassVariance()
    for p in range(2):
        parts = [pickle.loads(pickle.dumps(st.fork().update(X[a : a + 60], y[a : a + 60]))) for a in range(0, 200, 60)]
        for part in reversed(parts):  # any order
            st.merge(part)
        st.end_pass()
    assert st.compute() == pytest.approx(_want(X, y), rel=1e-12)


def test_rules_that_keep_passes_honest():
    X, y = _data()
    st = _TwoPassVariance().update(X, y)
    with pytest.raises(ValueError, match="needs 2 passes"):
        st.compute()
    stranger = _TwoPassVariance().update(X, y)
    st.end_pass()
    with pytest.raises(ValueError, match="pass 1 into one in pass 2"):
        st.merge(stranger)
    stranger.end_pass()
    with pytest.raises(ValueError, match="different runs"):
        st.merge(stranger.fork())
    with pytest.raises(ValueError, match="not seen in the first pass"):
        st.fork().update(X[:5], np.full(5, 99))
    st.update(X[:-1], y[:-1])
    with pytest.raises(ValueError, match="saw 199 rows but the first pass saw 200"):
        st.end_pass()
    st.update(X[-1:], y[-1:]).end_pass()
    with pytest.raises(ValueError, match="every pass has ended"):
        st.update(X, y)
    with pytest.raises(ValueError, match="n_samples=0"):
        _TwoPassVariance().end_pass()
    with pytest.raises(ValueError, match="n_features"):
        _TwoPassVariance().update(X, y).update(X[:, :2], y)
    with pytest.raises(TypeError):
        st.merge(object())


def test_registry_of_streams():
    assert {"logme", "hscore", "reg_hscore"} <= set(streaming.available_streams())
    assert type(streaming.stream("logme", compat="thuml")).__name__ == "LogMEStream"
    with pytest.raises(ValueError, match="no streaming state"):
        streaming.stream("nope")
    with pytest.raises(TypeError, match="labels are required"):
        streaming.run("logme", np.zeros((4, 2)))
    with pytest.raises(ValueError, match="chunk_rows"):
        streaming.run("logme", np.zeros((4, 2)), np.arange(4), chunk_rows=0)


def test_every_built_in_score_streams():
    import transferlab as tl

    assert set(streaming.available_streams()) == set(tl.scores.available())
