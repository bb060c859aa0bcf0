"""Correlations against hand computations and against scipy."""
import math

import numpy as np
import pytest
from scipy import stats

from transferlab.evaluate import kendall_tau, pearson, spearman, top_k_recall, weighted_tau


def test_hand_computed_cases():
    # Kendall: pairs (0,1) concordant, (0,2) concordant, (1,2) discordant -> (2 - 1) / 3
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    # Weighted tau, importance by truth (rank=None): truth [3,2,1] gives weights 1, 1/2, 1/3;
    # pair weights 3/2, 4/3, 5/6; the (1,2) pair is discordant: (3/2 + 4/3 - 5/6) / (11/3) = 6/11
    assert weighted_tau([3, 1, 2], [3, 2, 1], rank=None) == pytest.approx(6 / 11)
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(
        np.dot([-1, 0, 1], [-7 / 3, -1 / 3, 8 / 3]) / math.sqrt(2 * (49 + 1 + 64) / 9))
    assert spearman([10, 20, 30, 40], [1, 3, 2, 4]) == pytest.approx(1 - 6 * 2 / (4 * 15))
    assert top_k_recall({"a": 3, "b": 2, "c": 1}, {"a": 1, "b": 2, "c": 3}, k=2) == 0.5
    assert top_k_recall({"a": 3, "b": 2, "c": 1}, {"a": 3, "b": 2, "c": 1}, k=1) == 1.0


@pytest.mark.parametrize("seed", range(40))
def test_against_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 25))
    hi = 4 if seed % 2 else 1000  # many ties / almost none
    x = rng.integers(0, hi, size=n).astype(float)
    y = rng.integers(0, hi, size=n).astype(float)
    if np.unique(x).size < 2 or np.unique(y).size < 2:
        x[0], x[-1], y[0], y[-1] = 0.0, 1.0, 1.0, 0.0
    s, t = x, y  # scores, truth
    assert weighted_tau(s, t) == pytest.approx(stats.weightedtau(t, s).statistic, abs=1e-12)
    assert weighted_tau(s, t, rank=None) == pytest.approx(stats.weightedtau(t, s, rank=None).statistic, abs=1e-12)
    assert weighted_tau(s, t, rank=False) == pytest.approx(stats.weightedtau(t, s, rank=False).statistic, abs=1e-12)
    r = rng.permutation(n)
    assert weighted_tau(s, t, rank=r) == pytest.approx(stats.weightedtau(t, s, rank=r).statistic, abs=1e-12)
    assert kendall_tau(s, t) == pytest.approx(stats.kendalltau(s, t).statistic, abs=1e-12)
    assert pearson(s, t) == pytest.approx(stats.pearsonr(s, t).statistic, abs=1e-12)
    assert spearman(s, t) == pytest.approx(stats.spearmanr(s, t).statistic, abs=1e-12)


def test_rank_true_is_symmetric_and_rank_none_is_not():
    s, t = [0.1, 0.5, 0.2, 0.9, 0.4], [3.0, 1.0, 4.0, 2.0, 5.0]
    assert weighted_tau(s, t) == pytest.approx(weighted_tau(t, s))
    assert weighted_tau(s, t, rank=None) != pytest.approx(weighted_tau(t, s, rank=None))


def test_mappings_are_matched_by_name():
    s = {"b": 2.0, "a": 1.0, "c": 3.0}
    t = {"a": 10.0, "c": 30.0, "b": 5.0}
    x, y = [1.0, 2.0, 3.0], [10.0, 5.0, 30.0]
    assert kendall_tau(s, t) == pytest.approx(kendall_tau(x, y))
    assert weighted_tau(s, t, rank=None) == pytest.approx(weighted_tau(x, y, rank=None))
    with pytest.raises(ValueError, match=r"missing from truth: \['d'\]"):
        pearson(dict(s, d=1.0), t)


def test_nan_policy_and_constant_input():
    s, t = [1.0, np.nan, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match=r"NaN or infinite values for 1 model\(s\): \[1\]"):
        kendall_tau(s, t)
    assert kendall_tau(s, t, nan_policy="omit") == pytest.approx(kendall_tau([1, 3, 2], [1, 3, 4]))
    with pytest.warns(RuntimeWarning, match="constant"):
        assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))
    with pytest.warns(RuntimeWarning, match="constant"):
        assert math.isnan(weighted_tau([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="at least 2 models"):
        spearman([1.0], [2.0])
    with pytest.raises(ValueError, match="different lengths"):
        spearman([1.0, 2.0], [2.0, 3.0, 4.0])
    with pytest.raises(TypeError, match="real numbers"):
        pearson(["a", "b"], [1, 2])
    with pytest.raises(ValueError, match="nan_policy"):
        pearson([1, 2], [1, 2], nan_policy="drop")
