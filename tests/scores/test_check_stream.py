"""transferlab.testing.check_stream: every built-in state passes it, and it fails a state that breaks
the protocol (a merge that double-counts, a state that drifts from the one-shot score)."""
from __future__ import annotations

import numpy as np
import pytest

from transferlab.scores import registry
from transferlab.scores._stream import ScoreStream
from transferlab.testing import STREAM_CHECKS, ScoreCheckError, check_stream


@pytest.mark.parametrize("name", registry.available_streams())
def test_every_builtin_state_passes(name):
    report = check_stream(name)
    assert report.ok, str(report)
    assert {r.check for r in report.passed} == set(STREAM_CHECKS) | {"inputs_unchanged"}


def _mean_gap(features, labels):
    """Distance between the means of class 0 and class 1 (a toy score for the checks)."""
    X, y = np.asarray(features, dtype=np.float64), np.asarray(labels)
    if not np.isfinite(X).all():
        raise ValueError("features contain NaN or inf")
    return float(np.linalg.norm(X[y == 0].mean(0) - X[y == 1].mean(0)))


class _GapStream(ScoreStream):
    double_count_merges = False

    def _reset_pass(self):
        self.sums, self.counts = np.zeros((2, 0)), np.zeros(2)

    def _update(self, m, slots):
        X = m.to_float64_host()
        if not np.isfinite(X).all():
            raise ValueError("features contain NaN or inf")
        if self.sums.shape[1] == 0:
            self.sums = np.zeros((2, m.d))
        codes = np.asarray([self.labels.values[s] for s in slots])
        for c in (0, 1):
            self.sums[c] += X[codes == c].sum(0)
            self.counts[c] += (codes == c).sum()

    def _merge(self, other, slots):
        times = 2 if self.double_count_merges else 1
        if self.sums.shape[1] == 0:
            self.sums = np.zeros_like(other.sums)
        self.sums += times * other.sums
        self.counts += times * other.counts

    def _compute(self):
        return float(np.linalg.norm(self.sums[0] / self.counts[0] - self.sums[1] / self.counts[1]))


class _DoubleCountingStream(_GapStream):
    double_count_merges = True


@pytest.fixture
def toy():
    yield
    registry.unregister("_toy_gap")


def _data():
    rng = np.random.default_rng(0)
    y = np.arange(120) % 2
    return rng.normal(size=(120, 4)) + y[:, None], y


def test_a_correct_third_party_state_passes(toy):
    registry.register(registry.ScoreSpec("_toy_gap", _mean_gap, stream=_GapStream))
    X, y = _data()
    assert check_stream("_toy_gap", features=X, labels=y, checks=["chunk_sizes", "merge_orders", "pickle_round_trip"]).ok


def test_a_double_counting_merge_fails_the_merge_check(toy):
    registry.register(registry.ScoreSpec("_toy_gap", _mean_gap, stream=_DoubleCountingStream))
    X, y = _data()
    # Double-counting every part keeps class means unchanged unless parts differ: feed skewed parts.
    X = X + np.arange(120)[:, None] * 0.05
    report = check_stream("_toy_gap", features=X, labels=y, raise_on_failure=False)
    failed = {r.check for r in report.failures}
    assert "merge_orders" in failed and "chunk_sizes" not in failed
    with pytest.raises(ScoreCheckError, match="merge order"):
        check_stream("_toy_gap", features=X, labels=y)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown checks"):
        check_stream("logme", checks=["nope"])
    with pytest.raises(ValueError, match="both"):
        check_stream("logme", features=np.zeros((4, 2)))
