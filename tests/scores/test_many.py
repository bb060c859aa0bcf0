"""score_many equals the one-shot calls; select_ensemble is SFDA's greedy ensemble selection."""
from __future__ import annotations

import numpy as np
import pytest

import transferlab as tl
from conftest import class_data, digest


def _pool(seed=0, n=400):
    """Three 'models' of one dataset: A separates classes {0,1}, B separates {2,3}, C is noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=n)
    base = rng.normal(size=(n, 8))
    a, b = base.copy(), rng.normal(size=(n, 8))
    a[:, 0] += 4.0 * (y == 1) - 4.0 * (y == 0)
    b[:, 0] += 4.0 * (y == 3) - 4.0 * (y == 2)
    c = rng.normal(size=(n, 8))
    return [a.astype(np.float32), b.astype(np.float32), c.astype(np.float32)], y


def test_score_many_equals_one_shot_calls():
    X, y = class_data(n=300, d=12, c=4, seed=3)
    X2 = X[:, ::-1] * 0.5 + np.random.default_rng(1).normal(size=X.shape).astype(np.float32)
    feats = [X, X2, X[:, :6]]
    before = digest(*feats, y)
    got = tl.score_many(feats, y, scores=["sfda", "logme", "knn_loo", "hscore"],
                        score_kwargs={"knn_loo": {"k": 3}})
    assert digest(*feats, y) == before
    for j, x in enumerate(feats):
        assert got["sfda"][j] == tl.sfda(x, y)
        assert got["logme"][j] == tl.logme(x, y)
        assert got["knn_loo"][j] == tl.knn_loo(x, y, k=3)
        assert got["hscore"][j] == tl.hscore(x, y)


def test_score_many_string_labels_remapped_once():
    X, y = class_data(n=200, d=6, c=3, seed=4)
    names = np.array(["cat", "dog", "emu"])[y]
    assert tl.score_many([X], names, scores=["sfda"]) == tl.score_many([X], y, scores=["sfda"])


def test_score_many_bad_input():
    X, y = class_data(n=100, d=5, c=3)
    with pytest.raises(ValueError, match="same N samples"):
        tl.score_many([X, X[:50]], y, scores=["sfda"])
    with pytest.raises(ValueError, match="unknown score"):
        tl.score_many([X], y, scores=["no_such_score"])
    with pytest.raises(ValueError, match="empty"):
        tl.score_many([], y)
    with pytest.raises(ValueError, match="not requested"):
        tl.score_many([X], y, scores=["sfda"], score_kwargs={"knn_loo": {"k": 2}})
    with pytest.raises(ValueError):
        tl.score_many([X], y[:10], scores=["sfda"])


def test_select_ensemble_picks_complementary_models():
    feats, y = _pool()
    before = digest(*feats, y)
    sel = tl.select_ensemble(feats, y, size=2)
    assert digest(*feats, y) == before
    assert set(sel.models) == {0, 1}  # A and B together separate all four classes; C adds nothing
    # The trail is the score of each prefix's concatenated features, computed directly.
    assert sel.scores[0] == max(tl.sfda(f, y) for f in feats)
    both = np.concatenate([feats[sel.models[0]], feats[sel.models[1]]], axis=1)
    assert sel.scores[1] == pytest.approx(tl.sfda(both, y), rel=1e-12)
    assert sel.scores[1] > sel.scores[0]


def test_select_ensemble_other_score_and_bounds():
    feats, y = _pool(seed=1)
    sel = tl.select_ensemble(feats, y, size=3, score="logme")
    assert sorted(sel.models) == [0, 1, 2] and sel.score == "logme"
    with pytest.raises(ValueError, match=r"size must be in \[1, 3\]"):
        tl.select_ensemble(feats, y, size=4)
    with pytest.raises(TypeError):
        tl.select_ensemble(feats, y, size=1.5)
    with pytest.raises(ValueError, match="same N samples"):
        tl.select_ensemble([feats[0], feats[1][:10]], y, size=1)
