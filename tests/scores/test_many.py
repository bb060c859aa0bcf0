"""score_many equals the one-shot calls; select_ensemble is SFDA's greedy ensemble selection."""
from __future__ import annotations

import numpy as np
import pytest

import transferlab as tl
from transferlab.scores import _many

from _score_checks import fake_cuda  # noqa: F401 (a fixture)
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
        # logme / hscore go through the batched pool (scores/_batched.py): shared Gram, equal to rounding
        assert got["logme"][j] == pytest.approx(tl.logme(x, y), rel=1e-9, abs=0)
        assert got["knn_loo"][j] == tl.knn_loo(x, y, k=3)
        assert got["hscore"][j] == pytest.approx(tl.hscore(x, y), rel=1e-9, abs=0)
    unbatched = tl.score_many(feats, y, scores=["logme", "hscore"], batched=False)
    assert unbatched == {"logme": [tl.logme(x, y) for x in feats], "hscore": [tl.hscore(x, y) for x in feats]}


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


def test_score_many_bad_stream_count_and_error_note():
    X, y = class_data(n=100, d=5, c=3)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="cuda_streams"):
            tl.score_many([X], y, scores=["logme"], cuda_streams=bad)
    flat = np.zeros_like(X)
    with pytest.raises(ValueError) as err:  # the score's own error, with a note naming model and score
        tl.score_many([X, flat], y, scores=["transrate"])
    assert "all-zero" in str(err.value)
    assert any("features_list[1]" in note and "'transrate'" in note for note in err.value.__notes__)


class _FakeStreams:
    """Stream contexts that record which thread made each stream and which models ran inside one."""

    def __init__(self):
        import threading

        self.lock = threading.Lock()
        self.made, self.inside = [], 0

    def factory(self):
        import contextlib
        import threading

        with self.lock:
            self.made.append(threading.get_ident())

        @contextlib.contextmanager
        def enter():
            with self.lock:
                self.inside += 1
            yield

        return enter


def test_score_many_cuda_streams_path_on_the_host(fake_cuda, monkeypatch):
    # device="cuda" without a GPU (banks: CPU torch tensors labelled "cuda"): models run on worker threads,
    # one stream each, every model inside its stream; values equal the one-shot calls.
    streams = _FakeStreams()
    monkeypatch.setattr(_many, "_torch_stream_factory", lambda: streams.factory)
    X, y = class_data(n=300, d=12, c=4, seed=3)
    feats = [X, X[:, ::-1] * 0.5, X[:, :6], X + 1.0, X * 2.0]
    before = digest(*feats, y)
    scores = ["logme", "hscore", "reg_hscore", "gbc", "sfda"]
    got = tl.score_many(feats, y, scores=scores, device="cuda", cuda_streams=3)
    assert digest(*feats, y) == before
    assert len(streams.made) == 3 and len(set(streams.made)) == 3 and streams.inside == len(feats)
    assert fake_cuda["grams"] >= len(feats) and fake_cuda["solves"] >= len(feats)  # the "cuda" seam ran
    for name in scores:
        want = [getattr(tl, name)(x, y, device="cpu") for x in feats]
        assert got[name] == pytest.approx(want, rel=1e-9), name
    back_to_back = tl.score_many(feats, y, scores=scores, device="cuda", cuda_streams=1)
    assert len(streams.made) == 3  # cuda_streams=1: no worker threads
    assert back_to_back == got


def test_on_cuda_streams_order_and_first_error():
    streams = _FakeStreams()
    items = list(range(7))

    def score_model(j, x):
        if j in (2, 5):
            raise KeyError(f"model {j}")
        return [float(x) * 10]

    with pytest.raises(KeyError, match="model 2"):  # the lowest failing index, after all finished
        _many._on_cuda_streams(items, score_model, 4, streams.factory)
    assert streams.inside == 7
    ok = _many._on_cuda_streams(items, lambda j, x: [float(x), -float(j)], 3, _FakeStreams().factory)
    assert ok == [[float(j), -float(j)] for j in items]


@pytest.mark.cuda
def test_score_many_on_cuda_streams_equals_one_shot():
    import torch

    X, y = class_data(n=3000, d=64, c=6, sep=1.0, seed=9)
    rng = np.random.default_rng(9)
    feats = [torch.from_numpy(X @ rng.normal(size=(64, 48)).astype(np.float32)).cuda() for _ in range(6)]
    scores = ["sfda", "logme", "knn_loo", "hscore", "gbc", "transrate"]
    got = tl.score_many(feats, y, scores=scores, cuda_streams=4)
    serial = tl.score_many(feats, y, scores=scores, cuda_streams=1)
    for name in scores:
        one_shot = [getattr(tl, name)(x, y) for x in feats]
        assert got[name] == pytest.approx(one_shot, rel=1e-12), name
        assert serial[name] == pytest.approx(one_shot, rel=1e-12), name
        on_host = [getattr(tl, name)(x.cpu(), y) for x in feats]
        assert got[name] == pytest.approx(on_host, rel=1e-8), name
    from_host = tl.score_many([x.cpu().numpy() for x in feats], y, scores=scores, device="cuda")
    for name in scores:
        assert from_host[name] == pytest.approx(got[name], rel=1e-12), name


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


def test_select_ensemble_concatenates_on_the_device_path(fake_cuda):
    # device="cuda" without a GPU: the banks go to the "device" once and are concatenated there (torch);
    # the choice and the trail equal the host run.
    feats, y = _pool(seed=2)
    feats = [feats[0], feats[1].astype(np.float16), feats[2]]
    want = tl.select_ensemble(feats, y, size=3, device="cpu")
    got = tl.select_ensemble(feats, y, size=3, device="cuda")
    assert got.models == want.models
    assert got.scores == pytest.approx(want.scores, rel=1e-9)
    assert fake_cuda["placed"] >= 3


@pytest.mark.cuda
def test_select_ensemble_on_gpu_equals_host():
    import torch

    feats, y = _pool(seed=3, n=2000)
    want = tl.select_ensemble(feats, y, size=3)
    got = tl.select_ensemble([torch.from_numpy(f).cuda() for f in feats], y, size=3)
    assert got.models == want.models
    assert got.scores == pytest.approx(want.scores, rel=1e-8)
    logme = tl.select_ensemble(feats, y, size=2, score="logme", device="cuda")
    assert logme.models == tl.select_ensemble(feats, y, size=2, score="logme").models


def test_device_cuda_without_a_gpu_says_so():
    from transferlab import kernels

    if kernels.cuda_device_count() > 0:
        pytest.skip("a CUDA device is visible")
    X, y = class_data(n=60, d=4, c=3)
    calls = [lambda: tl.score_many([X], y, scores=["logme"], device="cuda"),
             lambda: tl.score_many([X, X], y, scores=["logme"], device="cuda"),
             lambda: tl.select_ensemble([X, X], y, 1, device="cuda"),
             lambda: tl.logme(X, y, device="cuda")]
    for call in calls:
        with pytest.raises(RuntimeError, match="CUDA"):
            call()
