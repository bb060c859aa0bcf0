"""The batched pool (transferlab/scores/_batched.py): score_many's sfda / logme / hscore from shared Gram
passes equal the one-shot calls (sfda bitwise, logme / hscore to 1e-9 relative) and the float64 oracles, and
every case it cannot take falls back to the one-shot call unchanged."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import transferlab as tl
from transferlab.reference.hscore import hscore as hscore_oracle
from transferlab.reference.logme import logme as logme_oracle
from transferlab.reference.sfda import sfda as sfda_oracle
from transferlab.scores import _batched, registry

from conftest import class_data, digest

SCORES = ["sfda", "logme", "hscore"]


def _pool(k=4, n=500, d=16, c=5, seed=0):
    """k models of one dataset: the same labels, features of growing separation, a ReLU-like offset on one
    (a large common mean: the shared centred Gram must not lose logme's digits), float64 on another."""
    X, y = class_data(n=n, d=d, c=c, seed=seed)
    rng = np.random.default_rng(seed + 1)
    feats = []
    for j in range(k):
        Z = X * (0.3 + 0.4 * j) + rng.normal(size=X.shape).astype(np.float32)
        if j == 1:
            Z = np.maximum(Z, 0) + 40.0
        if j == 2:
            Z = Z.astype(np.float64)
        feats.append(Z)
    return feats, y


def test_batched_equals_one_shot_and_the_oracles():
    feats, y = _pool()
    before = digest(*feats, y)
    got = tl.score_many(feats, y, scores=SCORES + ["knn_loo"])
    assert digest(*feats, y) == before
    for j, x in enumerate(feats):
        assert got["sfda"][j] == tl.sfda(x, y)  # the same calls in the same order: bitwise
        assert got["logme"][j] == pytest.approx(tl.logme(x, y), rel=1e-9, abs=0)
        assert got["hscore"][j] == pytest.approx(tl.hscore(x, y), rel=1e-9, abs=0)
        assert got["knn_loo"][j] == tl.knn_loo(x, y)
        x64 = x.astype(np.float64)
        assert got["sfda"][j] == pytest.approx(sfda_oracle(x64, y)[0], rel=1e-7)
        assert got["logme"][j] == pytest.approx(logme_oracle(x64, y), rel=1e-7)
        assert got["hscore"][j] == pytest.approx(hscore_oracle(x64, y), rel=1e-7)


def test_batched_options_and_labels_follow_the_one_shot_calls():
    feats, y = _pool(k=3, seed=4)
    names = np.array(["a", "b", "c", "d", "e"])[y]
    kw = {"sfda": {"a": 2.0, "log": True, "solver": "eigh"}, "logme": {"compat": "thuml"}}
    got = tl.score_many(feats, names, scores=SCORES, score_kwargs=kw)
    for j, x in enumerate(feats):
        assert got["sfda"][j] == tl.sfda(x, y, a=2.0, log=True, solver="eigh")
        assert got["logme"][j] == pytest.approx(tl.logme(x, y, compat="thuml"), rel=1e-9, abs=0)


def test_gram_groups_split_the_pool(monkeypatch):
    feats, y = _pool(k=5, seed=2)
    whole = tl.score_many(feats, y, scores=SCORES)
    calls = []
    real = _batched.lda.gram_batched

    def spy(mats, device, **kw):
        calls.append(len(mats))
        return real(mats, device, **kw)

    monkeypatch.setattr(_batched, "GRAM_GROUP_BYTES", 2 * 8 * 16 * 16)  # two 16 x 16 Grams per group
    monkeypatch.setattr(_batched.lda, "gram_batched", spy)
    assert tl.score_many(feats, y, scores=SCORES) == whole
    assert calls == [2, 2, 1]


def test_fallbacks_are_the_one_shot_calls(monkeypatch):
    X, y = class_data(n=40, d=64, c=4, seed=5)  # N <= D: the one-shot calls and their warnings
    big, yb = class_data(n=300, d=8, c=4, seed=6)
    monkeypatch.setattr(_batched, "_one", lambda *a, **k: pytest.fail("batched route taken"))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        got = tl.score_many([X], y, scores=SCORES)
    assert got == {"sfda": [tl_quiet(tl.sfda, X, y)], "logme": [tl_quiet(tl.logme, X, y)],
                   "hscore": [tl_quiet(tl.hscore, X, y)]}
    assert sum("n_features" in str(m.message) for m in w) == 3
    # options the batched route does not take
    assert tl.score_many([big], yb, scores=["sfda"], score_kwargs={"sfda": {"nan_policy": "omit"}}) == {
        "sfda": [tl.sfda(big, yb, nan_policy="omit")]}
    assert tl.score_many([big], yb, scores=["logme"], score_kwargs={"logme": {"max_memory": "64MB"}}) == {
        "logme": [tl.logme(big, yb, max_memory="64MB")]}
    assert tl.score_many([big], yb, scores=["sfda"], device="reference") == {
        "sfda": [tl.sfda(big, yb, device="reference")]}


def tl_quiet(f, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(X, y)


def test_a_reregistered_name_is_not_batched():
    X, y = class_data(n=300, d=8, c=3, seed=7)
    spec = registry.get("logme")
    registry.register(registry.ScoreSpec("logme", lambda x, labels, **kw: 42.0), overwrite=True)
    try:
        assert tl.score_many([X], y, scores=["logme"]) == {"logme": [42.0]}
    finally:
        registry.register(spec, overwrite=True)


def test_batched_errors_name_model_and_score():
    feats, y = _pool(k=3, seed=8)
    bad = feats[2].copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="NaN") as err:
        tl.score_many([feats[0], feats[1], bad], y, scores=SCORES)
    assert any("features_list[2]" in n for n in err.value.__notes__)
    point = np.repeat(np.eye(5, 16, dtype=np.float32), 100, axis=0)  # every class a single point
    yp = np.repeat(np.arange(5), 100)
    with pytest.raises(ValueError, match="within-class scatter is zero") as err:
        tl.score_many([feats[0][:500], point], yp, scores=["sfda"])
    assert any("features_list[1]" in n and "'sfda'" in n for n in err.value.__notes__)
    with pytest.raises(TypeError, match="a must be"):
        tl.score_many([feats[0]], y, scores=["sfda"], score_kwargs={"sfda": {"a": "x"}})
    with pytest.raises(TypeError, match="batched"):
        tl.score_many([feats[0]], y, scores=["sfda"], batched=1)


def test_a_single_batchable_score_takes_its_own_call(monkeypatch):
    # One score shares no pass with another: the batched route would only split sfda's fused first pass.
    feats, y = _pool(k=2, seed=9)
    monkeypatch.setattr(_batched, "_one", lambda *a, **k: pytest.fail("batched route taken"))
    assert tl.score_many(feats, y, scores=["sfda", "knn_loo"]) == {
        "sfda": [tl.sfda(x, y) for x in feats], "knn_loo": [tl.knn_loo(x, y) for x in feats]}
