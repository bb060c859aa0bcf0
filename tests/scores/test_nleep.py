"""NLEEP vs the float64 oracle and the published algorithm (float64 fit, random_state=123); the
float32 failure of the published code; component rules; the canonical row order (row 9); the 5C > N
fallback (row 13); bad input.

The score puts the rows in canonical order before the mixture fit (whose k-means++ start follows
the row order), so the oracle and the published baseline are fed that same order (``canon``)."""
from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import transferlab
from transferlab import nleep
from transferlab.core.arrays import as_labels, as_matrix
from transferlab.reference.nleep import nleep as oracle
from transferlab.core.row_order import canonical_order

from conftest import TOL
from _score_checks import (check_bad_inputs, check_label_remap_and_row_order, check_no_mutation, class_data,
                           digits_features, rel)
from bench.baselines.nleep_published import nleep_published

# EM is iterative: the eigensolve-based PCA and the oracle's SVD differ in the last bits, which EM
# can amplify to ~1e-7; the oracle tolerance still holds.
GMM_REL = TOL["oracle_rel"]
_nleep_mod = sys.modules[transferlab.scores.get("nleep").func.__module__]


def canon(X, y):
    """(X, y) in the score's canonical row order."""
    order = canonical_order(as_matrix(X), as_labels(y, len(y), "labels").codes)
    return (X, y) if order is None else (X[order], y[order])


@pytest.mark.parametrize("n,d,c,sep", [(400, 20, 3, 0.8), (600, 12, 2, 0.5)])
def test_matches_oracle_and_published_random(n, d, c, sep):
    X, y = class_data(n=n, d=d, c=c, sep=sep, seed=n + d)
    got = nleep(X, y)
    Xc, yc = canon(X, y)
    assert rel(got, oracle(Xc, yc, n_components=5 * c)) < GMM_REL
    assert rel(got, nleep_published(Xc, yc)) < TOL["published_rel"]
    assert got < 0


def test_digits_subset():
    H, y = digits_features()
    keep = y < 3  # 3 classes -> 15 components: a few seconds
    got = nleep(H[keep], y[keep])
    Hc, yc = canon(H[keep], y[keep])
    assert rel(got, nleep_published(Hc, yc)) < TOL["published_rel"]
    assert rel(got, oracle(Hc, yc, n_components=15)) < GMM_REL


def _lines(seed=0):
    """Each class lies near a line with a large spread: full-covariance components are nearly rank 1."""
    rng = np.random.default_rng(seed)
    n, d, c = 300, 6, 3
    y = rng.integers(0, c, n)
    V, M = rng.normal(size=(c, d)), rng.normal(size=(c, d)) * 30
    X = M[y] + rng.normal(size=(n, 1)) * 100 * V[y] + rng.normal(size=(n, d)) * 1e-3
    return X.astype(np.float32), y


def test_float32_features_do_not_fail_where_float64_succeeds():
    X, y = _lines()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="ill-defined empirical covariance"):
            nleep_published(X, y, dtype=np.float32)  # the published fragility
        want = nleep_published(*canon(X, y), dtype=np.float64)
    got = nleep(X, y)  # float32 input, float64 fit
    assert got == pytest.approx(want, abs=1e-9)


def test_component_rules():
    X, y = class_data(n=300, d=10, c=3, sep=0.8, seed=5)
    # "ratio": max(min(C, 0.2 N), 0.1 N) = max(3, 30) = 30 components.
    assert rel(nleep(X, y, components="ratio"), oracle(*canon(X, y), n_components=30)) < GMM_REL
    assert nleep(X, y, components=15) == nleep(X, y)
    with pytest.raises(ValueError, match="components"):
        nleep(X, y, components="auto")
    with pytest.raises(ValueError, match="needs at least 400 samples"):
        nleep(X, y, components=400)
    with pytest.raises(ValueError, match="var_ratio"):
        nleep(X, y, var_ratio=1.5)


def test_properties_no_mutation_bad_inputs(tmp_path):
    X, y = class_data(n=240, d=8, c=2, sep=1.0, seed=3)
    a, b = check_no_mutation(nleep, X, y, tmp_path)
    assert a == pytest.approx(b, rel=1e-9)
    check_label_remap_and_row_order(nleep, X, y, rtol=0)  # canonical order: bitwise
    Xs, ys = class_data(n=60, d=4, c=2, seed=2)
    check_bad_inputs(nleep, Xs, ys, components=2)


def test_row_order_with_duplicates_is_bitwise():
    # BAD_INPUTS.md row 9: exact duplicates (same and other labels); the published fit depends on
    # the row order, the score does not.
    X, y = class_data(n=150, d=6, c=3, sep=0.8, seed=9)
    X = np.concatenate([X, X[:30], X[:15]])
    y = np.concatenate([y, y[:30], (y[:15] + 1) % 3])
    base = nleep(X, y)
    rng = np.random.default_rng(0)
    for _ in range(3):
        perm = rng.permutation(len(y))
        assert nleep(X[perm], y[perm]) == base
        assert nleep(X[perm], y[perm], device="reference") == nleep(X, y, device="reference")
    Xc, yc = canon(X, y)
    assert rel(base, nleep_published(Xc, yc)) < TOL["published_rel"]
    # The published algorithm really does depend on the order (so the canonical order is needed).
    perm = rng.permutation(len(y))
    assert len({nleep_published(Xc, yc), nleep_published(X[perm], y[perm]), nleep_published(X, y)}) > 1


def test_canonical_order_is_a_function_of_contents():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 3, size=(200, 4)).astype(np.float32)  # many exact duplicates
    y = rng.integers(0, 4, size=200)
    X[8, 0] = 0.0
    X[7], X[7, 0], y[7] = X[8], 1e-30, y[8]  # distinct from row 8, same projections (rounding) and label
    order = canonical_order(as_matrix(X), y)
    pos7, pos8 = np.flatnonzero(order == 7)[0], np.flatnonzero(order == 8)[0]
    assert pos7 == pos8 + 1  # the content tie-break: 0 < 1e-30
    ref = canon(X, y)
    for _ in range(5):
        perm = rng.permutation(200)
        got = canon(X[perm], y[perm])
        assert got[0].tobytes() == ref[0].tobytes() and np.array_equal(got[1], ref[1])
    # Already canonical: no permutation, no copy.
    assert canonical_order(as_matrix(ref[0]), ref[1]) is None


def test_more_components_than_samples_falls_back():
    # BAD_INPUTS.md row 13 regime: 5 C > N. K = max(2, N // 10) with a warning, not a ValueError.
    X, y = class_data(n=120, d=5, c=30, sep=1.0, seed=4)
    with pytest.warns(UserWarning, match=r"K=150 .* n_samples=120; fitting K=12"):
        got = nleep(X, y)
    assert np.isfinite(got) and got < 0
    assert got == nleep(X, y, components=12)
    assert rel(got, oracle(*canon(X, y), n_components=12)) < GMM_REL
    with pytest.raises(ValueError, match="needs at least 121 samples"):
        nleep(X, y, components=121)  # an explicit K is never changed


def test_leep_from_posteriors_class_blocks():
    # Class-by-class LEEP (no C x K joint) vs the dense formula, blocks of a few classes, a zero-mass
    # component and classes of very different sizes.
    rng = np.random.default_rng(2)
    n, k, c = 500, 9, 40
    P = rng.dirichlet(np.ones(k), size=n)
    P[:, 4] = 0.0
    P /= P.sum(axis=1, keepdims=True)
    codes = np.r_[np.arange(c), rng.integers(0, 3, n - c)].astype(np.int32)
    J = np.zeros((c, k))
    np.add.at(J, codes, P / n)
    pz = J.sum(axis=0)
    live = pz > 0
    want = np.mean(np.log(np.sum(P[:, live] * J[codes][:, live] / pz[live], axis=1)))
    for block in (1, 7, 100, 1 << 12):
        got = _nleep_mod.leep_from_posteriors(P, codes, c, block_rows=block)
        assert got == pytest.approx(want, rel=1e-13)
