"""Selection strategies: task-agnostic, task-aware, hybrid (and its tie rules), oracle, random."""
import random

import pytest

from transferlab.pool import ModelCard, ModelPool
from transferlab.select import (Selection, agnostic_oracle, hybrid, random_selection, task_agnostic,
                                task_aware)


def test_task_agnostic_order_and_rules():
    pool = ModelPool([
        ModelCard("no-info", n_params=5),
        ModelCard("size-small", upstream_size=1000, n_params=1),
        ModelCard("acc-70", upstream_accuracy=70.0),
        ModelCard("size-big", upstream_size=9000),
        ModelCard("acc-80", upstream_accuracy=80.0, n_params=10),
    ])
    sel = task_agnostic(pool)
    assert sel.models == ("acc-80", "acc-70", "size-big", "size-small", "no-info")
    assert sel.rules == ("task-agnostic:upstream_accuracy",) * 2 + ("task-agnostic:upstream_size",) * 2 + (
        "task-agnostic:none",)
    assert sel.values == (80.0, 70.0, 9000.0, 1000.0, None)
    assert task_agnostic(pool, 2).models == ("acc-80", "acc-70")


def test_task_agnostic_ties_by_params_then_name():
    pool = ModelPool([
        ModelCard("z-small", upstream_accuracy=76.0, n_params=5),
        ModelCard("b-big", upstream_accuracy=76.0, n_params=50),
        ModelCard("a-big", upstream_accuracy=76.0, n_params=50),
        ModelCard("unknown", upstream_accuracy=76.0),
        ModelCard("near", upstream_accuracy=75.96, n_params=1),
        ModelCard("far", upstream_accuracy=75.0, n_params=1),
    ])
    # exact ties only: fewer parameters first, unknown counts last, then by name
    assert task_agnostic(pool).models == ("z-small", "a-big", "b-big", "unknown", "near", "far")
    # approximate ties: within tol of the group's best accuracy
    assert task_agnostic(pool, tol=0.05).models == ("near", "z-small", "a-big", "b-big", "unknown", "far")
    # input order does not matter
    shuffled = list(pool)
    random.Random(0).shuffle(shuffled)
    assert task_agnostic(ModelPool(shuffled), tol=0.05).models == task_agnostic(pool, tol=0.05).models
    with pytest.raises(ValueError, match="tol"):
        task_agnostic(pool, tol=-1)


def test_task_aware_ranks_by_score_ties_by_name():
    sel = task_aware({"c": 1.0, "b": 2.0, "a": 1.0, "d": -1.0}, name="knn")
    assert sel.models == ("b", "a", "c", "d")
    assert set(sel.rules) == {"task-aware:knn"} and sel.strategy == "task-aware:knn"
    assert sel.top(2).models == ("b", "a") and list(sel) == ["b", "a", "c", "d"]
    assert sel.rule("c") == "task-aware:knn"
    assert sel.as_rows()[0] == (1, "b", "task-aware:knn", 2.0)


def _pool4():
    return ModelPool([
        ModelCard("a", upstream_accuracy=70, n_params=3),
        ModelCard("b", upstream_accuracy=80, n_params=3),
        ModelCard("c", upstream_accuracy=75, n_params=3),
        ModelCard("d", upstream_accuracy=60, n_params=3),
    ])


def test_hybrid_is_agnostic_top1_then_task_aware_without_it():
    scores = {"a": 0.9, "b": 0.5, "c": 0.7, "d": 0.8}
    sel = hybrid(_pool4(), scores, name="LogME")
    # agnostic top-1 = b (80); then task-aware a, d, c (b already chosen)
    assert sel.models == ("b", "a", "d", "c")
    assert sel.rules == ("task-agnostic:upstream_accuracy", "task-aware:LogME", "task-aware:LogME",
                         "task-aware:LogME")
    assert hybrid(_pool4(), scores, 1).models == ("b",)  # budget 1 = the task-agnostic pick
    assert hybrid(_pool4(), scores, 2).models == ("b", "a")
    # when the agnostic pick is also the task-aware top-1, the next task-aware models fill the budget
    assert hybrid(_pool4(), {"a": 0.1, "b": 0.9, "c": 0.7, "d": 0.8}, 3).models == ("b", "d", "c")


def test_hybrid_tie_rules():
    # agnostic tie between b and c (80): fewer parameters wins (c); then by name among equal sizes.
    pool = ModelPool([ModelCard("a", upstream_accuracy=70, n_params=1), ModelCard("b", upstream_accuracy=80, n_params=9),
                      ModelCard("c", upstream_accuracy=80, n_params=2), ModelCard("d", upstream_accuracy=80, n_params=2)])
    scores = {"a": 1.0, "b": 1.0, "c": 0.0, "d": 1.0}
    sel = hybrid(pool, scores)
    # agnostic: c (80, 2 params; c < d by name); task-aware ties at 1.0 broken by name: a, b, d
    assert sel.models == ("c", "a", "b", "d")
    rev = ModelPool(list(pool)[::-1])
    assert hybrid(rev, dict(reversed(list(scores.items())))).models == sel.models


def test_hybrid_with_a_precomputed_agnostic_selection():
    ft = {"x": {"a": 1, "b": 2, "c": 3, "d": 4}, "y": {"a": 9, "b": 1, "c": 1, "d": 1}}
    oracle = agnostic_oracle(ft, "x")
    assert oracle.models[0] == "a"
    sel = hybrid(oracle, {"a": 0, "b": 3, "c": 2, "d": 1})
    assert sel.models == ("a", "b", "c", "d") and sel.rules[0] == "oracle"


def test_hybrid_model_sets_must_match():
    with pytest.raises(ValueError, match=r"missing from scores: \['d'\]"):
        hybrid(_pool4(), {"a": 1, "b": 2, "c": 3})
    with pytest.raises(ValueError, match=r"missing from pool: \['e'\]"):
        hybrid(_pool4(), {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})


def test_agnostic_oracle_mean_over_other_datasets():
    ft = {"Pets": {"a": 90.0, "b": 80.0, "c": 70.0},
          "cars": {"a": 50.0, "b": 70.0, "c": 60.0},
          "dtd": {"a": 60.0, "b": 70.0, "c": 80.0}}
    sel = agnostic_oracle(ft, "pets")  # case-insensitive dataset name
    # means over cars, dtd: a 55, b 70, c 70 -> b, c tie at 70 -> by name
    assert sel.models == ("b", "c", "a") and sel.values == (70.0, 70.0, 55.0)
    assert set(sel.rules) == {"oracle"}
    with pytest.raises(ValueError, match="at least one other dataset"):
        agnostic_oracle({"x": {"a": 1, "b": 2}}, "x")
    with pytest.raises(ValueError, match=r"\['c'\] have no fine-tune accuracy on dataset 'y'"):
        agnostic_oracle({"x": {"a": 1, "b": 2, "c": 3}, "y": {"a": 1, "b": 2}}, "x")
    with pytest.raises(ValueError, match="not in finetune"):
        agnostic_oracle(ft, "flowers")


def test_random_selection_is_seeded_and_order_independent():
    names = ["m%d" % i for i in range(10)]
    s1 = random_selection(names, 4, seed=3)
    assert len(s1) == 4 and set(s1.rules) == {"random"}
    assert random_selection(names[::-1], 4, seed=3).models == s1.models
    full = random_selection(names, seed=3)
    assert sorted(full.models) == sorted(names) and full.models[:4] == s1.models
    with pytest.raises(ValueError, match="budget must be in"):
        random_selection(names, 11, seed=0)
    with pytest.raises(TypeError, match="budget must be an integer"):
        random_selection(names, 2.0, seed=0)


def test_selection_validates():
    with pytest.raises(ValueError, match="one rule per model"):
        Selection(("a",), (), "x")
    with pytest.raises(ValueError, match="twice"):
        Selection(("a", "a"), ("r", "r"), "x")


def test_hybrid_n_agnostic_hand_cases():
    # agnostic order: b (80), c (75), a (70), d (60); task-aware order: a (.9), d (.8), c (.7), b (.5)
    scores = {"a": 0.9, "b": 0.5, "c": 0.7, "d": 0.8}
    assert hybrid(_pool4(), scores).models == hybrid(_pool4(), scores, n_agnostic=1).models == ("b", "a", "d", "c")
    two = hybrid(_pool4(), scores, n_agnostic=2, name="LogME")
    assert two.models == ("b", "c", "a", "d")
    assert two.rules == ("task-agnostic:upstream_accuracy",) * 2 + ("task-aware:LogME",) * 2
    assert two.values == (80, 75, 0.9, 0.8)
    assert hybrid(_pool4(), scores, 3, n_agnostic=2).models == ("b", "c", "a")
    assert hybrid(_pool4(), scores, n_agnostic=0).models == ("a", "d", "c", "b")  # = task_aware
    assert hybrid(_pool4(), scores, n_agnostic=4).models == ("b", "c", "a", "d")  # = task_agnostic
    # with a precomputed agnostic selection (the oracle), its first two come first
    ft = {"x": {"a": 1, "b": 2, "c": 3, "d": 4}, "y": {"a": 9, "b": 1, "c": 5, "d": 1}}
    sel = hybrid(agnostic_oracle(ft, "x"), {"a": 0, "b": 3, "c": 2, "d": 1}, n_agnostic=2)
    assert sel.models == ("a", "c", "b", "d") and sel.rules[:2] == ("oracle", "oracle")
    assert sel.values[:2] == (9.0, 5.0)


@pytest.mark.parametrize("bad, exc, msg", [(True, TypeError, "n_agnostic must be an integer"),
                                           (1.0, TypeError, "n_agnostic must be an integer"),
                                           (-1, ValueError, r"n_agnostic must be in \[0, n_models=4\]"),
                                           (5, ValueError, r"n_agnostic must be in \[0, n_models=4\]")])
def test_hybrid_n_agnostic_is_validated(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        hybrid(_pool4(), {"a": 0.9, "b": 0.5, "c": 0.7, "d": 0.8}, n_agnostic=bad)
