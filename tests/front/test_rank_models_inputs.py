"""tl.rank_models on bad arguments: one-line errors naming the argument, raised before any model runs; task= is
handed to the scores only when it is not "classification"."""
from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _front_models import mlp  # noqa: E402

import transferlab as tl  # noqa: E402
from transferlab.scores import registry  # noqa: E402

X = np.random.default_rng(0).normal(size=(40, 64)).astype(np.float32)
Y = np.arange(40) % 4


class Counting(torch.nn.Module):
    """An MLP that counts its forward passes (no error may be raised after one ran)."""

    calls = 0

    def __init__(self, seed):
        super().__init__()
        self.net = mlp(seed, 8)

    def forward(self, x):
        Counting.calls += 1
        return self.net(x)


def _models():
    return {"a": Counting(0), "b": Counting(1)}


@pytest.mark.parametrize("models, data, kwargs, error, match", [
    ("M", (X, Y), dict(scores=("knn_loo", "no_such_score")), ValueError, r"scores: unknown score 'no_such_score'"),
    ("M", (X, Y), dict(scores=()), ValueError, r"scores: give at least one score"),
    ("M", (X, Y), dict(scores=("logme", "logme")), ValueError, r"scores: a score is named twice"),
    ("M", (X, Y), dict(task="ordinal-nonsense"), ValueError, r"scores: 'knn_loo' does not support task='ordinal"),
    ("M", (X, Y), dict(layers="first"), ValueError, r"layers must be 'last', 'mean', 'best'"),
    ("M", (X, Y), dict(layers=[]), ValueError, r"layers must be"),
    ("M", (X, Y), dict(layers=[True]), ValueError, r"layers must be"),
    ("M", (X, Y), dict(pooling="max"), ValueError, r"pooling must be one of"),
    ("M", (X, Y), dict(batch_size=0), ValueError, r"batch_size must be a positive integer"),
    ("M", (X, Y), dict(device="gpu"), ValueError, r"device must be 'auto', 'cpu', 'cuda'"),
    ("M", (X, Y), dict(progress="yes"), TypeError, r"progress must be True or False"),
    ("M", (X, Y), dict(score_kwargs={"leep": {}}), ValueError, r"score_kwargs names 'leep'"),
    ({}, (X, Y), {}, ValueError, r"models: need at least 2 models to rank, got 0"),
    ("one", (X, Y), {}, ValueError, r"models: need at least 2 models to rank, got 1"),
    ("module", (X, Y), {}, TypeError, r"models must be a mapping"),
    ({1: "x", 2: "y"}, (X, Y), {}, TypeError, r"models: names must be non-empty strings"),
    ({"a": 3, "b": 4}, (X, Y), {}, TypeError, r"models\['a'\] must be a torch.nn.Module"),
    ("M", (X, None), {}, ValueError, r"data: the labels .* are None"),
    ("M", (X, Y[:30]), {}, ValueError, r"data: 40 inputs but 30 labels"),
    ("M", (X,), {}, ValueError, r"data: give \(X, y\)"),
    ("M", X, {}, TypeError, r"data must be \(X, y\)"),
    ("M", (X, np.zeros(40)), {}, ValueError, r"data: need at least 2 classes, got 1"),
    ("M", (X, np.linspace(0, 1, 40)), {}, ValueError, r"labels look continuous.*task='regression'"),
    ("M", (X[:, 0], Y), {}, ValueError, r"data: X must hold one row per sample"),
    ("M", (["a text"] * 40, Y), {}, ValueError, r"models\['a'\] is a torch module but data is text"),
    ("M", (X, Y), dict(layers=[3]), ValueError, r"layers: index 3 is out of range for model 'a'"),
])
def test_bad_arguments_raise_one_line_naming_the_argument(models, data, kwargs, error, match, tmp_path):
    if models == "M":
        models = _models()
    elif models == "one":
        models = {"a": Counting(0)}
    elif models == "module":
        models = Counting(0)
    Counting.calls = 0
    with pytest.raises(error, match=match) as info:
        tl.rank_models(models, data, **{"progress": False, "cache_dir": tmp_path, **kwargs})
    assert "\n" not in str(info.value)
    assert Counting.calls == 0  # checked before any forward pass


def test_cache_dir_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ValueError, match="cache_dir=.* exists and is not a directory"):
        tl.rank_models(_models(), (X, Y), cache_dir=f, progress=False)


@pytest.mark.parametrize("package", ["timm", "torchvision"])
def test_zoo_names_without_their_package_name_it(package, monkeypatch):
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed
    with pytest.raises(ImportError, match=rf"models\['{package}:resnet18'\] = '{package}:resnet18' needs {package}"):
        tl.rank_models({f"{package}:resnet18": f"{package}:resnet18", "b": Counting(1)}, (X, Y), progress=False)


def test_task_is_passed_on_only_when_it_is_not_classification():
    seen = []

    def spy(features, labels, **kwargs):
        seen.append((kwargs, np.asarray(labels).dtype.kind))
        return float(np.mean(features))

    registry.register(registry.ScoreSpec("spy_score", spy, tasks=("classification", "regression")))
    try:
        tl.rank_models(_models(), (X, Y), scores="spy_score", progress=False)
        assert [kw for kw, _ in seen] == [{}, {}]
        seen.clear()
        target = np.linspace(0.0, 1.0, 40)
        tl.rank_models(_models(), (X, target), scores="spy_score", task="regression", progress=False)
        assert seen == [({"task": "regression"}, "f")] * 2  # continuous labels reach the score as they are
        with pytest.raises(ValueError, match="'sfda' does not support task='regression'"):  # classification only
            tl.rank_models(_models(), (X, target), scores=("spy_score", "sfda"), task="regression")
    finally:
        registry.unregister("spy_score")
