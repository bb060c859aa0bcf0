"""task= in the registry: which scores support which task, and the one error the others raise."""
from __future__ import annotations

import numpy as np
import pytest

import transferlab as tl
from transferlab.scores import registry

# What SCORES.md defines beyond classification ("Targets beyond single-label classification").
EXPECTED = {
    "regression": {"knn_loo", "linear_probe", "logme", "parc"},
    "multilabel": {"knn_loo", "linear_probe", "logme"},
}


def _built_in(names):
    return sorted(n for n in names if registry.get(n).fn.__module__.startswith("transferlab."))


@pytest.mark.parametrize("task", ["regression", "multilabel"])
def test_available_lists_the_scores_of_a_task(task):
    assert set(_built_in(tl.scores.available(task=task))) == EXPECTED[task]
    assert set(tl.scores.available(task="classification")) == set(tl.scores.available())


@pytest.mark.parametrize("task", ["regression", "multilabel"])
@pytest.mark.parametrize("name", sorted(set(_built_in(tl.scores.available())) - {"knn_loo", "linear_probe",
                                                                                    "logme", "parc"}))
def test_every_other_score_raises_the_named_error(name, task):
    if name in EXPECTED[task]:
        pytest.skip("supported")
    rng = np.random.default_rng(0)
    X = rng.random((40, 5))
    X /= X.sum(axis=1, keepdims=True)
    y = rng.normal(size=40) if task == "regression" else (rng.random((40, 2)) > 0.5).astype(int)
    supported = ", ".join(tl.scores.available(task=task))
    msg = f"{name} does not support task='{task}'; scores that do: {supported}"
    with pytest.raises(ValueError) as e:
        tl.score(name, X, y, task=task)
    assert str(e.value) == msg


def test_unsupported_task_of_a_supporting_score_is_named():
    X = np.random.default_rng(1).normal(size=(30, 3))
    with pytest.raises(ValueError, match="parc does not support task='multilabel'; scores that do: "):
        tl.parc(X, (X[:, :2] > 0).astype(int), task="multilabel")


def test_unknown_task_is_a_clear_error():
    with pytest.raises(ValueError, match="task must be one of"):
        tl.scores.available(task="ordinal")
    with pytest.raises(ValueError, match="tasks must be a non-empty subset"):
        registry.ScoreSpec("x", lambda X, y: 0.0, tasks=("ordinal",))
