"""Every score returns a finite value or raises ValueError on degenerate features (hostile-input
issue, defect 4): LogME returned NaN on all-zero features and -inf on features scaled by 1e8 with
N < D, silently."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import transferlab as tl
from transferlab import testing
from transferlab.scores import streaming


def test_logme_on_all_zero_features_raises():
    y = np.arange(40) % 3
    with pytest.raises(ValueError, match="no direction has nonzero variance"):
        tl.logme(np.zeros((40, 5)), y)
    with pytest.raises(ValueError, match="no direction has nonzero variance"):
        streaming.run("logme", np.zeros((40, 5)), y)


@pytest.mark.parametrize("scale", [1e8, 1e-8, 1e150, 1e-150])
@pytest.mark.parametrize("compat", ["exact", "thuml"])
def test_logme_with_fewer_rows_than_dims_is_finite_at_any_scale(scale, compat):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 50)), np.arange(20) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the N < D warning
        got = tl.logme(X * scale, y, compat=compat)
        unscaled = tl.logme(X, y, compat=compat)
    assert np.isfinite(got)
    if compat == "exact":  # the maximised evidence does not depend on a global scale (alpha absorbs it)
        assert got == pytest.approx(unscaled, abs=0.02)


def test_logme_of_moderate_features_keeps_the_published_path():
    # The rescaled frame is only taken where the published fixed point is not finite.
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(300, 8)), np.arange(300) % 3
    from transferlab.reference.logme import logme as oracle
    assert tl.logme(X, y) == pytest.approx(oracle(X, y), rel=1e-9)


@pytest.mark.parametrize("name", tl.available())
@pytest.mark.parametrize("kind", ["zeros", "wide_1e8"])
def test_every_score_is_finite_or_raises_value_error(name, kind):
    wide = name not in ("leep", "nce")
    X, y = testing.valid_inputs(name, n=20, d=50 if wide else 6, c=2, seed=1)
    if kind == "zeros":
        X = np.zeros_like(X)
    elif wide:
        X = X * 1e8
    else:
        pytest.skip("probabilities cannot be scaled")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            value = tl.score(name, X, y)
        except ValueError:
            return
    assert np.isfinite(value), f"{name} on {kind} features returned {value}"


def test_parc_on_two_dimensions_warns_and_no_longer_depends_on_rounding():
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    X = rng.normal(size=(3, 2))[y] + rng.normal(size=(120, 2))
    with pytest.warns(UserWarning, match="100% of the probe's row pairs are perfectly correlated"):
        cpu = tl.parc(X, y)
    with pytest.warns(UserWarning, match="perfectly correlated"):
        ref = tl.parc(X, y, device="reference")
    assert cpu == pytest.approx(ref, abs=1e-9)  # were 3.11 and 2.47: the ties were broken by rounding
    with pytest.raises(ValueError, match="constant"):  # one dimension: every row is constant
        tl.parc(X[:, :1], y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tl.parc(np.hstack([X, rng.normal(size=(120, 3))]), y)  # three dimensions: no warning


def _with_duplicates(share_dup, seed=0, n=150, d=12):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(3, d))[y] + rng.normal(size=(n, d))
    n_dup = int(share_dup * n)
    X[n - n_dup:], y[n - n_dup:] = X[:n_dup], y[:n_dup]  # exact duplicate rows (their labels too)
    return X, y


def test_parc_with_duplicate_rows_is_a_function_of_the_data():
    # Hostile-input defect 12: duplicate rows correlate exactly; their pairs' ranks were decided by the
    # last bits of a dot product. Now they tie exactly: the CPU path equals the float64 reference and the
    # value does not move when the duplicate rows' bits are reached by another summation order.
    X, y = _with_duplicates(0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a few duplicate pairs are not a degenerate RDM: no warning
        cpu = tl.parc(X, y, pca=None)
        ref = tl.parc(X, y, pca=None, device="reference")
        exact = [tl.parc(X, y, pca=None, label_rdm="exact"), tl.parc(X, y, pca=None, label_rdm="exact", device="reference"),
                 # reversed columns: other rounding, same data (the exact label RDM: no label-RDM noise either)
                 tl.parc(X[:, ::-1].copy(), y, pca=None, label_rdm="exact")]
    assert cpu == pytest.approx(ref, abs=1e-9)  # were 51.6835 and 51.6836
    assert exact == pytest.approx([exact[0]] * 3, abs=1e-9)  # were apart by 5e-7


def test_parc_warns_when_most_pairs_are_perfectly_correlated():
    rng = np.random.default_rng(3)
    y = np.arange(90) % 3
    X = np.repeat(rng.normal(size=(2, 8)), 45, axis=0)  # two distinct rows: every pair correlates at +-1
    X[0, 0] += 1e-9  # (not constant columns)
    with pytest.warns(UserWarning, match="perfectly correlated"):
        tl.parc(X, y, pca=None)
