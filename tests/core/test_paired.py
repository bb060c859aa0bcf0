"""transferlab.core.paired against scipy.stats.ttest_rel and hand computations (float64)."""
import math

import numpy as np
import pytest
from scipy import stats

from transferlab.core.paired import (PairedStats, paired_difference, paired_test, standard_error, tied_groups,
                                     tied_with_best)


def test_hand_case():
    a = np.array([1, 1, 0, 1, 1, 0], dtype=np.float64)
    b = np.array([1, 0, 0, 0, 1, 1], dtype=np.float64)
    # d = [0, 1, 0, 1, 0, -1]: mean 1/6, sample variance (sum d^2 - n mean^2)/(n-1) = (3 - 1/6)/5
    pd = paired_difference(a, b)
    assert pd.n == 6 and pd.df == 5
    assert pd.mean == pytest.approx(1 / 6, abs=1e-15)
    assert pd.se == pytest.approx(math.sqrt((3 - 1 / 6) / 5 / 6), rel=1e-14)
    assert pd.t == pytest.approx((1 / 6) / math.sqrt((3 - 1 / 6) / 30), rel=1e-14)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_matches_ttest_rel(alternative):
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    b = a - 0.1 + rng.normal(scale=0.5, size=200)
    ref = stats.ttest_rel(a, b, alternative=alternative)
    pd = paired_difference(a, b)
    assert pd.t == pytest.approx(ref.statistic, rel=1e-10)
    assert pd.p_value(alternative) == pytest.approx(ref.pvalue, rel=1e-9)
    assert paired_test(a, b, alternative=alternative) == pytest.approx(ref.pvalue, rel=1e-9)
    assert pd.significant(0.05, alternative) == (ref.pvalue < 0.05)


def test_bounds_match_t_quantiles():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=50), rng.normal(size=50)
    d = a - b
    se = d.std(ddof=1) / math.sqrt(50)
    pd = paired_difference(a, b)
    q95, q975 = stats.t.ppf(0.95, 49), stats.t.ppf(0.975, 49)
    assert pd.lower_bound(0.05) == pytest.approx(d.mean() - q95 * se, rel=1e-12, abs=1e-15)
    assert pd.upper_bound(0.05) == pytest.approx(d.mean() + q95 * se, rel=1e-12, abs=1e-15)
    lo, hi = pd.interval(0.05)
    assert (lo, hi) == pytest.approx((d.mean() - q975 * se, d.mean() + q975 * se), rel=1e-12, abs=1e-15)
    # the lower bound excludes 0 exactly when the one-sided test rejects
    assert (pd.lower_bound(0.05) > 0) == pd.significant(0.05, "greater")


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("b,c", [(3, 0), (7, 2), (0, 5), (10, 10)])
def test_binary_rows_use_mcnemar_exact(b, c, alternative):
    # 0/1 correctness on 300 rows: b rows where only a is right, c where only b is
    a = np.zeros(300)
    bb = np.zeros(300)
    a[:b] = 1
    bb[b:b + c] = 1
    a[250:], bb[250:] = 1, 1  # concordant right rows
    pd = paired_difference(a, bb)
    assert pd.discordant == (b, c)
    ref = stats.binomtest(b, b + c, 0.5, alternative=alternative).pvalue
    assert pd.p_value(alternative) == pytest.approx(ref, rel=1e-12)
    # the large-sample t-test would call 3 against 0 significant; the exact test does not
    if (b, c) == (3, 0) and alternative == "greater":
        assert stats.ttest_rel(a, bb, alternative="greater").pvalue < 0.05 < pd.p_value("greater")


def test_pairing_removes_row_difficulty():
    # Two models that fail on the same hard rows: unpaired they look alike, paired the one extra win is all
    # the difference, and with a constant difference the test is certain.
    a = np.r_[np.ones(90), np.zeros(10)]
    b = a.copy()
    b[0] = 0.0
    pd = paired_difference(a, b)
    assert pd.mean == pytest.approx(0.01) and pd.se == pytest.approx(0.01)  # sqrt(0.01*0.99*100/99)/10
    assert pd.discordant == (1, 0) and pd.p_value("greater") == 0.5  # one discordant row: a coin flip
    x, y = (np.arange(40) % 3 == 0).astype(float), (np.arange(40) % 5 == 0).astype(float)
    halves = PairedStats().add(x[:13], y[:13]).merge(PairedStats().add(x[13:], y[13:])).result()
    assert halves.discordant == paired_difference(x, y).discordant
    c = a - 0.5  # constant difference 0.5, zero variance
    assert paired_difference(a, c).p_value() == 0.0
    assert paired_difference(a, a).p_value() == 1.0
    assert paired_difference(a, a).interval() == (0.0, 0.0)


def test_stream_and_merge_equal_one_shot():
    rng = np.random.default_rng(2)
    a, b = rng.random(1000), rng.random(1000)
    ref = paired_difference(a, b)
    st = PairedStats()
    for s in range(0, 1000, 137):
        st.add(a[s:s + 137], b[s:s + 137])
    left, right = PairedStats().add(a[:400], b[:400]), PairedStats().add(a[400:], b[400:])
    for got in (st.result(), left.merge(right).result()):
        assert got.n == 1000 and got.discordant is None
        assert got.mean == pytest.approx(ref.mean, rel=1e-12)
        assert got.se == pytest.approx(ref.se, rel=1e-12)


def test_standard_error():
    v = np.array([0.9, 0.8, 1.0, 0.7, 0.85])
    assert standard_error(v) == pytest.approx(np.std(v, ddof=1) / math.sqrt(5), rel=1e-14)
    assert standard_error([1, 0, 1, 1]) == pytest.approx(math.sqrt(0.25 / 4), rel=1e-14)


def test_tied_groups():
    n = 400
    rng = np.random.default_rng(3)
    base = (rng.random(n) < 0.8).astype(float)
    near = base.copy()
    near[np.flatnonzero(base)[:2]] = 0.0  # 2 fewer correct rows out of 400: not significant
    far = base.copy()
    far[np.flatnonzero(base)[:80]] = 0.0  # 80 fewer: significant
    samples = {"b": base, "a": base.copy(), "near": near, "far": far}
    groups = tied_groups(samples, 0.05)
    assert groups == [("a", "b", "near"), ("far",)]
    assert tied_with_best(samples, 0.05) == ["a", "b", "near"]
    # given scores rank instead of the sample means; no model is significantly worse than "far" (all better)
    assert tied_with_best(samples, 0.05, scores={"a": 1, "b": 1, "near": 1, "far": 2}) == ["far", "a", "b", "near"]


def test_inputs_not_mutated():
    a = np.array([1, 0, 1], dtype=np.float32)
    b = np.array([0, 0, 1], dtype=np.int64)
    a0, b0 = a.copy(), b.copy()
    paired_difference(a, b)
    assert np.array_equal(a, a0) and np.array_equal(b, b0)


@pytest.mark.parametrize("a,b,exc,msg", [
    ([1, 2, 3], [1, 2], ValueError, "same rows"),
    ([[1, 2]], [[1, 2]], ValueError, "1-D"),
    ([1, np.nan], [1, 2], ValueError, "NaN"),
    (["x", "y"], [1, 2], TypeError, "numeric"),
    ([1], [2], ValueError, "at least 2 rows"),
])
def test_bad_inputs(a, b, exc, msg):
    with pytest.raises(exc, match=msg):
        paired_difference(a, b)


def test_bad_alpha_and_alternative():
    pd = paired_difference([1, 0, 1], [0, 0, 1])
    with pytest.raises(ValueError, match="alpha"):
        pd.lower_bound(1.5)
    with pytest.raises(ValueError, match="alternative"):
        pd.p_value("bigger")
    with pytest.raises(ValueError, match="same rows"):
        tied_groups({"a": [1, 0], "b": [1, 0, 1]})
    with pytest.raises(TypeError, match="samples"):
        tied_groups([[1, 0]])
