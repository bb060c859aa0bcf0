"""BAD_INPUTS.md as a suite over every registered score (transferlab.testing.check_score).

Parametrised over the registry at collection time, so a newly registered score is checked with no
new test code. Scores still raising NotImplementedError are skipped with that reason. The second
half proves the suite can fail: deliberately broken dummy scores must be caught, each by the row
it breaks.
"""
from __future__ import annotations

import numpy as np
import pytest

import transferlab
from transferlab import testing
from transferlab.core.arrays import as_labels, as_matrix
from transferlab.core.inputs import check_finite
from transferlab.scores import register, unregister


SLOW_CHECKS = ["row13_many_classes"]  # 20,000 samples in 5,000 and 10,000 classes: minutes for some scores


@pytest.mark.parametrize("name", transferlab.scores.available())
def test_registered_score_passes_bad_input_suite(name):
    checks = [c for c in testing.CHECKS if c not in SLOW_CHECKS]
    report = testing.check_score(name, checks=checks, raise_on_failure=False)
    if report.not_implemented is not None:
        pytest.skip(f"{name}: {report.not_implemented}")
    assert report.ok, str(report)
    # Both input modes ran.
    assert {r.mode for r in report.passed} == {"memory", "memmap"}


@pytest.mark.slow
@pytest.mark.parametrize("name", transferlab.scores.available())
def test_registered_score_many_classes(name):
    report = testing.check_score(name, checks=SLOW_CHECKS, raise_on_failure=False)
    if report.not_implemented is not None:
        pytest.skip(f"{name}: {report.not_implemented}")
    assert report.ok, str(report)


# ---------------------------------------------------------------------------- the suite can fail


def _good_mean_score(features, labels, *, nan_policy="raise"):
    """A correct toy score: mean distance of each sample to its class mean (negated)."""
    m = as_matrix(features, "features")
    lab = as_labels(labels, m.n, "labels", min_classes=1)
    keep = check_finite(m, nan_policy)
    if keep is not None:
        m = m.take(keep)
        lab = as_labels(lab.classes[lab.codes[keep]], name="labels", min_classes=1)
    if m.n < 2:
        raise ValueError(f"need at least 2 samples, got n_samples={m.n}")
    if lab.n_classes < 2:
        raise ValueError(f"need at least 2 classes, got {lab.n_classes}")
    X = m.to_float64_host()
    means = np.zeros((lab.n_classes, m.d))
    np.add.at(means, lab.codes, X)
    means /= lab.counts[:, None]
    return float(-np.mean(np.sum((X - means[lab.codes]) ** 2, axis=1)))


def _mutating(features, labels, **kw):
    """Centres the caller's features in place (the published SFDA bug)."""
    out = _good_mean_score(features, labels, **kw)
    features -= features.mean(axis=0)  # writes through a view; fails on read-only memmaps too
    return out


def _nan_through(features, labels, **kw):
    """Returns NaN on NaN input instead of raising."""
    X = np.asarray(features, dtype=np.float64)
    if X.ndim == 2 and X.size and not np.isfinite(X).all():
        return float("nan")
    return _good_mean_score(features, labels, **kw)


def _no_remap(features, labels, **kw):
    """Uses raw label values as class indices (gaps and negative labels change the number)."""
    y = np.asarray(labels)
    if y.dtype.kind in "iu" and y.ndim == 1:
        return _good_mean_score(features, labels, **kw) + float(np.abs(y).max()) * 1e-3
    return _good_mean_score(features, labels, **kw)


def _order_dependent(features, labels, **kw):
    """An argmin-style tie rule: depends on which row comes first."""
    X = np.asarray(features, dtype=np.float64)
    return _good_mean_score(features, labels, **kw) + (1e-3 * X[0, 0] if X.ndim == 2 and X.size else 0.0)


def _silent_omit(features, labels, *, nan_policy="raise"):
    """Drops NaN rows under nan_policy='omit' without saying how many."""
    if nan_policy == "omit":
        X = np.asarray(features, dtype=np.float64)
        ok = np.isfinite(X).all(axis=1) if X.ndim == 2 else slice(None)
        return _good_mean_score(np.ascontiguousarray(X[ok]), np.asarray(labels)[ok])
    return _good_mean_score(features, labels, nan_policy=nan_policy)


BROKEN = {
    "silent_omit": (_silent_omit, "row01_nan_policy_omit"),
    "mutating": (_mutating, "mutated"),
    "nan_through": (_nan_through, "row01_nan_inf_raise"),
    "no_remap": (_no_remap, "row06_labels_remapped"),
    "order_dependent": (_order_dependent, "row09_duplicates_row_order"),
}


def test_correct_toy_score_passes():
    register("_tl_toy_good", inputs="features")(_good_mean_score)
    try:
        report = testing.check_score("_tl_toy_good", raise_on_failure=False)
        assert report.ok, str(report)
    finally:
        unregister("_tl_toy_good")


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_score_is_caught(kind):
    func, expected = BROKEN[kind]
    name = f"_tl_broken_{kind}"
    register(name, inputs="features")(func)
    try:
        with pytest.raises(testing.ScoreCheckError) as info:
            testing.check_score(name)
        report = info.value.report
        assert not report.ok
        text = str(report)
        assert expected in text, text
        assert name in text
    finally:
        unregister(name)
    assert name not in transferlab.scores.available()


def test_not_implemented_score_is_reported_not_failed():
    def stub(features, labels):
        """Placeholder."""
        raise NotImplementedError("coming soon")

    register("_tl_stub", inputs="probs")(stub)
    try:
        report = testing.check_score("_tl_stub")  # does not raise
        assert report.not_implemented == "coming soon" and not report.ok
    finally:
        unregister("_tl_stub")


def test_check_score_argument_errors():
    with pytest.raises(ValueError, match="unknown score"):
        testing.check_score("no_such_score")
    with pytest.raises(ValueError, match="unknown checks"):
        testing.check_score("knn_loo", checks=["row99"])
    with pytest.raises(ValueError, match="modes"):
        testing.check_score("knn_loo", modes=["gpu"])


def test_input_digest_sees_one_changed_byte():
    a = np.zeros((4, 3), dtype=np.float32)
    before = testing.input_digest(a, [1, 2])
    a[2, 1] = 1e-30
    assert testing.input_digest(a, [1, 2]) != before


def _one_hot_score(features, labels):
    """Builds a dense N x C one-hot matrix (what row 13 forbids)."""
    lab = as_labels(labels, None, "labels")
    onehot = np.zeros((lab.n, lab.n_classes))
    onehot[np.arange(lab.n), lab.codes] = 1.0
    return _good_mean_score(features, labels) + float(onehot.sum()) * 0.0


def test_dense_one_hot_is_caught_by_row13():
    register("_tl_onehot", inputs="features")(_one_hot_score)
    try:
        report = testing.check_score("_tl_onehot", checks=["row13_many_classes"], modes=["memory"],
                                     raise_on_failure=False)
        assert [r.status for r in report.results] == ["fail"], str(report)
        assert "N x C" in report.results[0].detail
    finally:
        unregister("_tl_onehot")


def test_exemptions_are_reported_as_skips(monkeypatch):
    register("_tl_nan_through", inputs="features")(_nan_through)
    monkeypatch.setitem(testing.EXEMPTIONS, "_tl_nan_through", {"row01_nan_inf_raise": "test exemption"})
    try:
        report = testing.check_score("_tl_nan_through", checks=["row01_nan_inf_raise"], raise_on_failure=False)
        assert report.ok and {r.status for r in report.results} == {"skip"}
        assert "exempt: test exemption" in report.results[0].detail
    finally:
        unregister("_tl_nan_through")
