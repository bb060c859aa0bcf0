"""Regret definitions against hand computations; the closed-form random regret against enumeration and
simulation; budget to zero regret and success rate."""
import itertools
import math

import numpy as np
import pytest

from transferlab.evaluate import (budget_to_zero_regret, expected_random_budget_to_zero, expected_random_regret,
                                  random_success_rate, regret, relative_delta, success_rate, top_k_regret)
from transferlab.select import random_selection, task_aware

FT = {"a": 0.5, "b": 0.8, "c": 0.6, "d": 0.75}
FT_PCT = {k: 100 * v for k, v in FT.items()}


def test_regret_kinds_by_hand():
    assert regret(["a"], FT, kind="absolute") == pytest.approx(0.3)
    assert regret(["a"], FT) == pytest.approx(0.3 / 0.8)  # relative is the default
    assert regret(["a"], FT, kind="log_odds") == pytest.approx(math.log(0.8 / 0.2) - math.log(0.5 / 0.5))
    assert regret(["a", "c"], FT) == pytest.approx(0.2 / 0.8)
    assert regret(["b"], FT) == 0.0 and regret(["a", "b"], FT, kind="log_odds") == 0.0
    # percent tables: absolute in points, relative and log-odds unchanged (percent detected from max > 1)
    assert regret(["a"], FT_PCT, kind="absolute") == pytest.approx(30.0)
    assert regret(["a"], FT_PCT) == pytest.approx(0.375)
    assert regret(["a"], FT_PCT, kind="log_odds") == pytest.approx(math.log(4.0))
    assert regret(["a"], FT_PCT, kind="log_odds", percent=True) == pytest.approx(math.log(4.0))
    # accepts a Selection
    assert regret(task_aware({"a": 2, "b": 0, "c": 1, "d": -1}).top(2), FT) == pytest.approx(0.25)


def test_log_odds_at_perfect_accuracy():
    ft = {"a": 1.0, "b": 0.9}
    assert regret(["b"], ft, kind="log_odds") == math.inf
    assert regret(["a"], ft, kind="log_odds") == 0.0


def test_relative_delta_by_hand():
    assert relative_delta(["b"], ["a"], FT) == pytest.approx((0.8 - 0.5) / 0.8)
    assert relative_delta(["a"], ["b"], FT) == pytest.approx((0.5 - 0.8) / 0.5)
    assert relative_delta(["a", "b"], ["b"], FT) == 0.0
    assert relative_delta(["b"], ["a"], FT, kind="log_odds") == pytest.approx(math.log(4.0))
    # relative_delta(all models, S) is the relative regret of S
    assert relative_delta(list(FT), ["c"], FT) == pytest.approx(regret(["c"], FT))


def test_expected_random_regret_by_enumeration():
    # budget 1: mean of the single-model regrets (0.3, 0, 0.2, 0.05) / 4
    assert expected_random_regret(FT, 1, kind="absolute") == pytest.approx(0.55 / 4)
    assert expected_random_regret(FT, 1) == pytest.approx(0.55 / 4 / 0.8)
    # budget 2: subsets ab 0, ac .2, ad .05, bc 0, bd 0, cd .05 -> 0.3 / 6
    assert expected_random_regret(FT, 2, kind="absolute") == pytest.approx(0.05)
    assert expected_random_regret(FT, 4) == 0.0
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(2, 8))
        ft = {f"m{i}": float(v) for i, v in enumerate(rng.integers(1, 6, size=n) / 6)}  # with ties
        for b in range(1, n + 1):
            for kind in ("relative", "absolute", "log_odds"):
                subsets = list(itertools.combinations(ft, b))
                brute = np.mean([regret(s, ft, kind=kind) for s in subsets])
                assert expected_random_regret(ft, b, kind=kind) == pytest.approx(brute, rel=1e-12, abs=1e-15)


def test_expected_random_regret_against_simulation():
    ft = {f"m{i}": v for i, v in enumerate([0.61, 0.7, 0.72, 0.72, 0.65, 0.9, 0.5, 0.88])}
    draws = 4000
    for b in (1, 3):
        sim = np.mean([regret(random_selection(ft, b, seed=s), ft) for s in range(draws)])
        exact = expected_random_regret(ft, b)
        sd = np.std([regret(random_selection(ft, b, seed=s), ft) for s in range(draws)]) / math.sqrt(draws)
        assert abs(sim - exact) < 4 * sd + 1e-12
    sim_b0 = np.mean([budget_to_zero_regret(random_selection(ft, seed=s), ft) for s in range(draws)])
    assert sim_b0 == pytest.approx(expected_random_budget_to_zero(ft), abs=0.15)  # (8+1)/(1+1) = 4.5
    assert expected_random_budget_to_zero(ft) == 4.5
    sim_sr = np.mean([budget_to_zero_regret(random_selection(ft, seed=s), ft) <= 3 for s in range(draws)])
    assert sim_sr == pytest.approx(random_success_rate(ft, 3), abs=0.03)
    assert random_success_rate(ft, 3) == pytest.approx(1 - math.comb(7, 3) / math.comb(8, 3))


def test_top_k_regret_by_hand():
    scores = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 0.0}
    assert top_k_regret(scores, FT) == pytest.approx(0.375)
    assert top_k_regret(scores, FT, k=2) == pytest.approx(0.25)
    assert top_k_regret(scores, FT, k=3) == 0.0
    assert top_k_regret(scores, FT, k=1, kind="absolute") == pytest.approx(0.3)
    with pytest.raises(ValueError, match=r"k must be in \[1, n_models=4\]"):
        top_k_regret(scores, FT, k=5)


def test_budget_to_zero_regret_by_hand():
    scores = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 0.0}
    assert budget_to_zero_regret(scores, FT) == 3
    assert budget_to_zero_regret(["b", "a"], FT) == 1
    # two best models: the first one reached counts
    ft = {"a": 0.5, "b": 0.8, "c": 0.6, "d": 0.8}
    assert budget_to_zero_regret({"a": 3, "b": 0, "c": 2, "d": 1}, ft) == 3
    with pytest.raises(ValueError, match="never reaches a best model"):
        budget_to_zero_regret(["a", "c"], FT)


def test_success_rate_by_hand():
    per = {"x": 1, "y": 3, "z": 2}
    np.testing.assert_allclose(success_rate(per, [1, 2, 3, 4]), [1 / 3, 2 / 3, 1.0, 1.0])
    assert success_rate([1, 5], 2) == 0.5
    with pytest.raises(ValueError, match="budgets must be positive integers"):
        success_rate(per, [0, 1])
    with pytest.raises(ValueError, match="per_dataset"):
        success_rate([], [1])


def test_regret_bad_input():
    with pytest.raises(ValueError, match="kind must be one of"):
        regret(["a"], FT, kind="ratio")
    with pytest.raises(ValueError, match=r"missing from finetune: \['zz'\]"):
        regret(["a", "zz"], FT)
    with pytest.raises(ValueError, match="selected is empty"):
        regret([], FT)
    with pytest.raises(TypeError, match="got a string"):
        regret("a", FT)
    with pytest.raises(ValueError, match="at least 2 models"):
        regret(["a"], {"a": 0.5})
    with pytest.raises(ValueError, match="NaN or infinite"):
        regret(["a"], {"a": 0.5, "b": float("nan")})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        regret(["a"], {"a": 0.5, "b": 150.0}, kind="log_odds")
