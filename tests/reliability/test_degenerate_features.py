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


def test_parc_on_two_dimensions_warns_that_it_is_rounding_noise():
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    X = rng.normal(size=(3, 2))[y] + rng.normal(size=(120, 2))
    with pytest.warns(UserWarning, match="decided by rounding noise"):
        tl.parc(X, y)
    with pytest.raises(ValueError, match="constant"):  # one dimension: every row is constant
        tl.parc(X[:, :1], y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tl.parc(np.hstack([X, rng.normal(size=(120, 3))]), y)  # three dimensions: no warning
