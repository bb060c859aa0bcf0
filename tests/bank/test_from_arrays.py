"""FeatureBank.from_arrays: plain arrays become a normal bank (on disk or in memory), validated like a score call,
inputs never mutated; the bank scores as the arrays do (float64 oracles in transferlab/reference)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

import transferlab as tl
from transferlab.bank import FeatureBank
from transferlab.reference import knn as ref_knn
from transferlab.reference import leep as ref_leep


def _data(n=120, d=6, c=3, z=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    x = (rng.normal(size=(c, d))[y] * 2 + rng.normal(size=(n, d))).astype(np.float32)
    p = rng.dirichlet(np.ones(z), n)
    p[:5, 1] = 0.0  # exact zeros: stored as the most negative float, whose softmax term is exactly 0
    p /= p.sum(1, keepdims=True)
    return x, y, p


def _digest(*arrays):
    return [hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() for a in arrays]


def test_written_bank_round_trips_and_scores_like_the_arrays(tmp_path):
    x, y, p = _data()
    names = np.array(["cat", "dog", "eel"])[y]  # string labels: remapped, classes kept
    before = _digest(x, names, p)
    b = FeatureBank.from_arrays(x, names, p, path=tmp_path / "b", model_id="m1", dataset_id="toy")
    assert _digest(x, names, p) == before
    again = FeatureBank.open(tmp_path / "b")  # a normal, verified bank directory
    assert (again.model_id, again.dataset_id, again.n, again.d, again.logits.shape[1]) == ("m1", "toy", 120, 6, 4)
    assert again.meta["classes"] == ["cat", "dog", "eel"] and again.meta["logits_from"] == "probs"
    np.testing.assert_array_equal(again.features, x)
    np.testing.assert_array_equal(np.array(again.meta["classes"])[again.labels], names)
    # LEEP of the stored bank (softmax of the stored log-probabilities) = the float64 oracle on the probabilities.
    res = tl.score_pool(tmp_path / "b", ["leep", "knn_loo"])
    t = res.table()
    assert t["leep"]["toy"]["m1"] == pytest.approx(ref_leep.leep(p, y)[0], rel=1e-6, abs=1e-7)
    assert t["knn_loo"]["toy"]["m1"] == pytest.approx(ref_knn.knn_loo(x.astype(np.float64), y)[0], abs=1e-12)


def test_logits_and_in_memory_bank():
    x, y, _ = _data(seed=1)
    lg = np.random.default_rng(2).normal(size=(120, 5))
    b = FeatureBank.from_arrays(x, y, logits=lg)
    assert b.path is None and b.meta["logits_from"] == "logits" and b.logits.dtype == np.float32
    got = tl.score_pool([b], ["leep"]).table()["leep"]["data"]["model"]
    assert got == pytest.approx(ref_leep.leep(lg.astype(np.float32).astype(np.float64), y, from_logits=True)[0],
                                rel=1e-6)


@pytest.mark.parametrize("dtype,stored", [(np.float16, "float16"), (np.float64, "float64"), (np.int32, "float32"),
                                          (np.bool_, "float32")])
def test_storage_dtype(tmp_path, dtype, stored):
    x, y, _ = _data()
    b = FeatureBank.from_arrays((x > 0).astype(dtype) if dtype is np.bool_ else x.astype(dtype), y,
                                path=tmp_path / "b")
    assert b.meta["dtype"] == stored and b.features.dtype == np.dtype(stored)


def test_read_only_memmap_input_is_written_in_blocks(tmp_path, monkeypatch):
    import transferlab._bank_arrays as ba

    x, y, _ = _data(n=300)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    monkeypatch.setattr(ba, "_BLOCK_BYTES", 50 * 6 * 4)  # 50 rows a block: 6 writes
    b = FeatureBank.from_arrays(mm, y, path=tmp_path / "b")
    np.testing.assert_array_equal(b.features, x)
    assert not mm.flags.writeable


def _bad_cases():
    x, y, p = _data()
    nan = x.copy()
    nan[7, 2] = np.nan
    neg = p.copy()
    neg[3, 0] = -0.1
    unnorm = p * 2
    return [
        (dict(features=nan, labels=y), ValueError, ["features", "NaN", "row 7"]),
        (dict(features=x, labels=y[:-1]), ValueError, ["labels", "119", "120"]),
        (dict(features=x, labels=np.zeros(120)), ValueError, ["at least 2 classes"]),
        (dict(features=x[:, 0], labels=y), ValueError, ["features"]),
        (dict(features=x, labels=y + 0.5), ValueError, ["continuous"]),
        (dict(features=x.astype(np.complex64), labels=y), TypeError, ["features"]),
        (dict(features=x, labels=y, probs=neg), ValueError, ["probs", "negative", "from_logits"]),
        (dict(features=x, labels=y, probs=unnorm), ValueError, ["probs", "sum to 1"]),
        (dict(features=x, labels=y, probs=p[:-1]), ValueError, ["probs", "119", "120"]),
        (dict(features=x, labels=y, probs=p, logits=p), ValueError, ["probs=", "logits="]),
        (dict(features=x, labels=y, model_id=""), TypeError, ["model_id"]),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_input_names_the_argument(tmp_path, case):
    kwargs, exc, words = _bad_cases()[case]
    with pytest.raises(exc) as ei:
        FeatureBank.from_arrays(path=tmp_path / "b", **kwargs)
    for w in words:
        assert w in str(ei.value), (w, str(ei.value))
    assert not (tmp_path / "b").exists()  # validated before anything is written


def test_existing_bank_is_not_overwritten(tmp_path):
    x, y, _ = _data()
    FeatureBank.from_arrays(x, y, path=tmp_path / "b")
    with pytest.raises(ValueError, match="complete feature bank"):
        FeatureBank.from_arrays(x * 2, y, path=tmp_path / "b")
    np.testing.assert_array_equal(FeatureBank.open(tmp_path / "b").features, x)


def test_model_id_defaults_to_the_directory_so_side_by_side_banks_rank_as_two_models(tmp_path, capsys):
    from transferlab import cli

    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(3), 30)
    clean = (np.eye(3)[y] * 4 + rng.normal(size=(90, 3))).astype(np.float32)
    noisy = (clean + rng.normal(scale=5, size=clean.shape)).astype(np.float32)
    a = FeatureBank.from_arrays(clean, y, path=tmp_path / "clean")
    b = FeatureBank.from_arrays(noisy, y, path=tmp_path / "noisy" / "")  # a trailing separator names it too
    assert (a.model_id, b.model_id, FeatureBank.from_arrays(clean, y).model_id) == ("clean", "noisy", "model")
    assert cli.main(["rank", str(tmp_path / "clean"), str(tmp_path / "noisy"), "--by", "knn_loo"]) == 0
    out = capsys.readouterr().out
    assert "| 1 |" in out and out.index("clean") < out.index("noisy")
