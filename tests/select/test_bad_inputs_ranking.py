"""BAD_INPUTS.md row 18 (ranking layer): NaN scores, ties, model sets that do not match, fewer than 2 models."""
import copy
import itertools
import math

import pytest

from transferlab.evaluate import (Report, budget_to_zero_regret, kendall_tau, top_k_regret, weighted_tau)
from transferlab.pool import ModelCard, ModelPool
from transferlab.select import hybrid, task_agnostic, task_aware

FT = {"a": 0.5, "b": 0.8, "c": 0.6, "d": 0.75}
POOL = ModelPool([ModelCard(m, upstream_accuracy=70 + i) for i, m in enumerate("abcd")])


def test_nan_scores_raise_naming_models_unless_omitted():
    s = {"a": 1.0, "b": math.nan, "c": 2.0, "d": math.inf}
    for call in (lambda **kw: task_aware(s, **kw), lambda **kw: hybrid(POOL, s, **kw),
                 lambda **kw: top_k_regret(s, FT, **kw), lambda **kw: budget_to_zero_regret(s, FT, **kw)):
        with pytest.raises(ValueError, match=r"2 model\(s\): \['b', 'd'\].*nan_policy='omit'"):
            call()
    sel = task_aware(s, nan_policy="omit")
    assert sel.models == ("c", "a") and sel.omitted == ("b", "d")
    # omitted models cannot be picked but still define the best accuracy of the pool
    assert top_k_regret(s, FT, k=2, nan_policy="omit") == pytest.approx((0.8 - 0.6) / 0.8)
    assert hybrid(POOL, s, nan_policy="omit").models == ("c", "a")
    with pytest.raises(ValueError, match="never reaches a best model"):
        budget_to_zero_regret(s, FT, nan_policy="omit")
    with pytest.raises(ValueError, match="nan_policy must be one of"):
        task_aware(s, nan_policy="ignore")


def test_ties_follow_the_documented_rule_whatever_the_input_order():
    s = {"d": 1.0, "c": 2.0, "b": 1.0, "a": 2.0}
    expected = ("a", "c", "b", "d")  # equal scores: by model name
    for perm in itertools.permutations(s):
        assert task_aware({k: s[k] for k in perm}).models == expected
    ft = {"a": 0.7, "b": 0.9, "c": 0.7, "d": 0.8}
    assert budget_to_zero_regret(s, ft, ties="name") == 3
    # by default the tie {b, d} is broken at random: b first half the time, 2 + (2 + 1) / (1 + 1)
    assert budget_to_zero_regret(s, ft) == 3.5


def test_model_sets_that_do_not_match_raise_listing_ids():
    with pytest.raises(ValueError, match=r"missing from finetune: \['e'\].*missing from scores: \['d'\]"):
        top_k_regret({"a": 1, "b": 2, "c": 3, "e": 4}, FT)
    with pytest.raises(ValueError, match=r"missing from truth: \['e'\]"):
        kendall_tau({"a": 1, "b": 2, "e": 3}, {"a": 1, "b": 2})
    with pytest.raises(ValueError, match=r"missing from scores: \['d'\]"):
        hybrid(POOL, {"a": 1, "b": 2, "c": 3})
    scores = {"LogME": {"pets": {"a": 1, "b": 2, "c": 3}}}
    with pytest.raises(ValueError, match=r"pets: no LogME score for \['d'\]"):
        Report.from_tables(scores, {"pets": FT}, pool=None)
    with pytest.raises(ValueError, match=r"no fine-tune accuracies: \['cars'\]"):
        Report.from_tables({"LogME": {"cars": FT}}, {"pets": FT}, pool=None)


def test_fewer_than_two_models():
    with pytest.raises(ValueError, match="at least 2 models"):
        task_aware({"a": 1.0})
    with pytest.raises(ValueError, match="at least 2 models"):
        task_agnostic(ModelPool([ModelCard("a")]))
    with pytest.raises(ValueError, match="at least 2 models"):
        weighted_tau({"a": 1.0}, {"a": 2.0})
    with pytest.raises(ValueError, match="at least 2 models"):
        top_k_regret({"a": 1.0}, {"a": 0.5})


def test_inputs_are_not_mutated():
    s = {"d": 1.0, "c": 2.0, "b": math.nan, "a": 2.0}
    ft = dict(FT)
    before = copy.deepcopy((s, ft))
    task_aware(s, nan_policy="omit")
    hybrid(POOL, s, nan_policy="omit")
    top_k_regret(s, ft, k=2, nan_policy="omit")
    assert repr((s, ft)) == repr(before)


def test_bad_types():
    with pytest.raises(TypeError, match="mapping"):
        task_aware([1.0, 2.0])
    with pytest.raises(TypeError, match="real number"):
        task_aware({"a": "1", "b": 2.0})
    with pytest.raises(TypeError, match="model names must be strings"):
        task_aware({1: 1.0, 2: 2.0})
