"""linear_probe on one validation split (``cv=None``): both protocols against the float64 oracle (a different
solver) and scikit-learn, the seeded split, properties, bad input (BAD_INPUTS.md). The default k-fold protocol
(``cv=5``) is tested in test_linear_probe_cv.py on top of the same fits."""
from __future__ import annotations

import contextlib
import functools
import sys
import warnings

import numpy as np
import pytest

import transferlab
from transferlab.core.arrays import as_matrix
from transferlab.core.lbfgs import minimize
from transferlab.reference import linear_probe as ref
from transferlab.scores import LinearProbeResult
from transferlab.scores import linear_probe as _linear_probe

from conftest import CUDA_READY, TOL, class_data, digest

lp = sys.modules["transferlab.scores.linear_probe.one_shot"]  # the module (the package exports the function)
# every test here is about the one-split protocol; cv= defaults to 5 folds (test_linear_probe_cv.py)
linear_probe = functools.partial(_linear_probe, cv=None)

TIGHT = dict(tol=1e-10, max_iter=5000)  # converge fully so that weights can be compared


@pytest.fixture
def tiny_sgd(monkeypatch):
    monkeypatch.setattr(lp, "RENGGLI_STEPS", 40)
    monkeypatch.setattr(ref, "STEPS", 40)


@pytest.fixture
def short_sgd(monkeypatch):
    """The renggli protocol with 300 steps (the oracle too): the same code paths, 8x faster."""
    monkeypatch.setattr(lp, "RENGGLI_STEPS", 300)
    monkeypatch.setattr(ref, "STEPS", 300)


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data, d.target


def _one_blas_thread():
    """Small GEMMs on a threaded BLAS crawl on a loaded machine; the oracle needs no threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _oracle(X, y, res, protocol="lbfgs", seed=0, C=1.0, standardize=True):
    codes = np.unique(y, return_inverse=True)[1].reshape(-1)
    n_classes = int(codes.max()) + 1
    with _one_blas_thread():
        return ref.fit_and_score(np.asarray(X, dtype=np.float64), codes, n_classes, res.train_index,
                                 res.val_index, protocol=protocol, seed=seed, C=C, standardize=standardize)


def _assert_matches_oracle(got: LinearProbeResult, want: dict, coef_rtol=1e-5):
    assert got.score == pytest.approx(want["score"], rel=TOL["oracle_rel"])
    np.testing.assert_allclose(got.mean, want["mean"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.scale, want["scale"], rtol=1e-12)
    scale = np.abs(want["coef"]).max()
    np.testing.assert_allclose(got.coef, want["coef"], rtol=0, atol=coef_rtol * scale)
    # The intercepts are defined up to a common shift (softmax invariance): compare centred.
    bi, bw = got.intercept - got.intercept.mean(), want["intercept"] - want["intercept"].mean()
    np.testing.assert_allclose(bi, bw, rtol=0, atol=coef_rtol * max(1.0, np.abs(bw).max()))
    assert got.loss == pytest.approx(want["loss"], rel=1e-9)


# ------------------------------------------------------------------ split


def _split(X, y, c, f, seed):
    return lp.stratified_split(lp.content_keys(as_matrix(X), seed), y, c, f)


@pytest.mark.parametrize("n,c,f", [(100, 3, 0.2), (57, 7, 0.5), (30, 10, 0.01), (40, 4, 0.99), (1000, 2, 0.3)])
def test_split_matches_oracle_and_is_stratified(n, c, f):
    rng = np.random.default_rng(n + c)
    y = rng.integers(0, c, size=n)
    y[: 2 * c] = np.repeat(np.arange(c), 2)  # every class has at least 2 rows
    X = rng.normal(size=(n, 5)).astype(np.float32)
    X[n // 2 :: 7] = X[n // 2 - 1]  # exact duplicates (some in other classes)
    X[3, 1] = -0.0
    X[4] = X[3]
    X[4, 1] = 0.0  # -0.0 and 0.0 are the same content
    tr, va = _split(X, y, c, f, seed=7)
    otr, ova = ref.split(X, y, c, f, seed=7)
    np.testing.assert_array_equal(tr, otr)
    np.testing.assert_array_equal(va, ova)
    assert tr.dtype == va.dtype == np.int64
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, va])), np.arange(n))
    keys = lp.content_keys(as_matrix(X), 7)
    assert tuple(keys[3]) == tuple(keys[4])
    for idx in (tr, va):  # canonical order: ascending (key 0, key 1, class)
        assert np.all(np.diff(np.lexsort((y[idx], keys[idx, 1], keys[idx, 0]))) == 1)
    for k in range(c):
        n_c = int(np.sum(y == k))
        want = min(max(int(np.floor(f * n_c + 0.5)), 1), n_c - 1)
        assert int(np.sum(y[va] == k)) == want


def test_split_is_deterministic_and_seeded():
    X, y = class_data(n=300, d=8, c=4, seed=1)
    a = linear_probe(X, y, seed=3, return_details=True)
    b = linear_probe(X, y, seed=3, return_details=True)
    c = linear_probe(X, y, seed=4, return_details=True)
    np.testing.assert_array_equal(a.val_index, b.val_index)
    assert a.score == b.score
    np.testing.assert_array_equal(a.coef, b.coef)
    assert not np.array_equal(a.val_index, c.val_index)
    assert a.val_index.size == c.val_index.size == sum(round(0.2 * k) for k in np.bincount(y))


def test_val_fraction_edges():
    y = np.repeat(np.arange(5), [2, 3, 10, 50, 1])
    X = np.random.default_rng(0).normal(size=(y.size, 3))
    with pytest.warns(UserWarning, match="1 class\\(es\\) have a single sample"):
        tr, va = _split(X, y, 5, 0.01, seed=0)
    # tiny fractions still validate every splittable class once; the singleton trains only
    np.testing.assert_array_equal(np.bincount(y[va], minlength=5), [1, 1, 1, 1, 0])
    assert np.sum(y[tr] == 4) == 1
    with pytest.warns(UserWarning):
        tr, va = _split(X, y, 5, 0.99, seed=0)
    np.testing.assert_array_equal(np.bincount(y[tr], minlength=5), [1, 1, 1, 1, 1])
    # every class a singleton: nothing to validate on
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="nothing is left to validate"):
        linear_probe(np.eye(4), [0, 1, 2, 3])
    for bad in (0, 0.0, 1, 1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="val_fraction must be in \\(0, 1\\)"):
            linear_probe(np.eye(6), [0, 0, 0, 1, 1, 1], val_fraction=bad)
    for bad in (True, "0.2", None):
        with pytest.raises(TypeError, match="val_fraction"):
            linear_probe(np.eye(6), [0, 0, 0, 1, 1, 1], val_fraction=bad)


def test_singleton_class_trains_only_and_warns_once():
    X, y = class_data(n=200, d=6, c=3, seed=2)
    X = np.vstack([X, np.full((1, 6), 9.0, dtype=np.float32)])
    y = np.concatenate([y, [7]])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = linear_probe(X, y, return_details=True)
    assert len(rec) == 1 and "single sample" in str(rec[0].message)
    assert 200 in res.train_index and 200 not in res.val_index
    assert res.coef.shape == (4, 6)


def test_explicit_split():
    X, y = class_data(n=200, d=6, c=3, seed=2)
    tr, va = np.arange(0, 150), np.arange(150, 200)
    res = linear_probe(X, y, split=(tr, va), return_details=True)
    np.testing.assert_array_equal(res.val_index, va)
    want = ref.fit_and_score(X.astype(np.float64), y, 3, tr, va)
    assert res.score == want["score"]
    for bad, err, msg in [
        ((tr, tr[:10]), ValueError, "overlap"),
        ((tr, np.array([], dtype=np.int64)), ValueError, "empty"),
        ((tr, np.array([150, 250])), ValueError, "outside"),
        ((tr, np.array([150, 150])), ValueError, "repeated"),
        ((tr, va.astype(float)), TypeError, "integer"),
        (tr, TypeError, "pair"),
    ]:
        with pytest.raises(err, match=msg):
            linear_probe(X, y, split=bad)


# ------------------------------------------------------------------ lbfgs vs oracle and scikit-learn


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("n,d,c,sep", [(400, 10, 2, 0.4), (600, 32, 5, 0.5), (900, 64, 12, 0.35), (300, 120, 4, 0.3)])
def test_lbfgs_matches_oracle_random(n, d, c, sep, standardize):
    # (300, 120): n_train < 2d, nearly separable: the L2 term carries the conditioning.
    X, y = class_data(n=n, d=d, c=c, sep=sep, seed=n + d)
    got = linear_probe(X, y, seed=1, standardize=standardize, return_details=True, **TIGHT)
    assert got.converged
    _assert_matches_oracle(got, _oracle(X, y, got, standardize=standardize))
    assert 1.0 / c < got.score < 1.0  # informative data, not trivially separable


@pytest.mark.parametrize("C", [0.01, 1.0, 100.0])
def test_lbfgs_matches_oracle_digits(C):
    X, y = _digits()
    got = linear_probe(X, y, C=C, return_details=True, **TIGHT)
    _assert_matches_oracle(got, _oracle(X, y, got, C=C))
    assert got.score > 0.9


def test_lbfgs_default_tolerance_gives_the_converged_accuracy():
    X, y = _digits()
    got = linear_probe(X, y, return_details=True)
    want = _oracle(X, y, got)
    assert got.score == pytest.approx(want["score"], rel=TOL["oracle_rel"])
    assert got.loss == pytest.approx(want["loss"], rel=1e-6)


def test_lbfgs_matches_scikit_learn():
    """SCORES.md: accuracy must match scikit-learn's (StandardScaler + LogisticRegression, C=1)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, y = _digits()
    got = linear_probe(X, y, return_details=True, **TIGHT)
    sc = StandardScaler().fit(X[got.train_index])
    Xtr, Xva = sc.transform(X[got.train_index]), sc.transform(X[got.val_index])
    with _one_blas_thread():
        clf = LogisticRegression(C=1.0, tol=1e-8, max_iter=20000).fit(Xtr, y[got.train_index])
    assert got.score == pytest.approx(clf.score(Xva, y[got.val_index]), rel=TOL["oracle_rel"])
    np.testing.assert_allclose(got.coef, clf.coef_, rtol=0, atol=1e-4 * np.abs(clf.coef_).max())


def test_lbfgs_solver_unit():
    """The solver alone: an ill-conditioned quadratic, with a NaN wall the line search must back off
    from, stops at the minimiser; max_iter reports status 1."""
    w = np.logspace(0, 2, 50)  # scipy's L-BFGS-B needs ~100 iterations here too

    def fun(x):
        if np.abs(x).max() > 3:
            return float("nan"), np.full_like(x, np.nan)
        return 0.5 * float(np.sum(w * (x - 1) ** 2)), w * (x - 1)

    x, f, it, status = minimize(fun, np.full(50, -2.9), 1000, 1e-9, 0.0)
    assert status == 0 and np.abs(w * (x - 1)).max() <= 1e-9
    np.testing.assert_allclose(x, 1.0, rtol=0, atol=1e-9)
    _, _, it, status = minimize(fun, np.full(50, -2.9), 3, 1e-9, 0.0)
    assert (it, status) == (3, 1)


def test_lbfgs_max_iter_warns():
    X, y = class_data(n=300, d=16, c=3, sep=0.4, seed=4)
    with pytest.warns(UserWarning, match="max_iter=2"):
        res = linear_probe(X, y, max_iter=2, return_details=True)
    assert not res.converged and res.n_iter == 2


def test_lbfgs_constant_feature_and_many_classes():
    rng = np.random.default_rng(5)
    c = 300
    y = np.repeat(np.arange(c), 3)
    X = rng.normal(size=(y.size, 5)) + y[:, None] * 0.01
    X[:, 2] = 4.0  # constant: scale 1, standardised to 0
    got = linear_probe(X, y, return_details=True, **TIGHT)
    assert got.scale[2] == 1.0 and got.coef.shape == (c, 5)
    _assert_matches_oracle(got, _oracle(X, y, got))


# ------------------------------------------------------------------ renggli


def test_renggli_matches_oracle_random(short_sgd):
    X, y = class_data(n=700, d=24, c=5, sep=0.4, seed=8)
    got = linear_probe(X, y, protocol="renggli", seed=2, return_details=True)
    want = _oracle(X, y, got, protocol="renggli", seed=2)
    np.testing.assert_array_equal(got.runs, want["runs"])
    assert got.score == want["score"] == np.median(want["runs"].max(axis=1))
    np.testing.assert_allclose(got.coef, want["coef"], rtol=0, atol=1e-9 * np.abs(want["coef"]).max())
    assert got.loss == pytest.approx(want["loss"], rel=1e-9)
    assert got.runs.shape == (5, 2)


@pytest.mark.slow
def test_renggli_full_protocol_digits():
    """The unshortened protocol (2500 steps x 2 learning rates x 5 runs); the oracle replays run 0."""
    X, y = _digits()
    got = linear_probe(X, y, protocol="renggli", return_details=True)
    assert got.n_iter == 2500 and got.runs.shape == (5, 2)
    assert got.score == np.median(got.runs.max(axis=1)) and got.score > 0.9
    Xtr, Xva, _, _ = ref.standardise(X[got.train_index], X[got.val_index], True)
    for j, lr in enumerate(ref.LRS):
        W, b = ref.sgd_run(Xtr, y[got.train_index], 10, lr, seed=0, run=0)
        assert got.runs[0, j] == ref.accuracy(Xva, y[got.val_index], W, b)


def test_renggli_schedule_definition():
    n, batch = 37, 512
    s = lp.renggli_schedule(4, 1, n, steps=30)
    assert s.size == 30 * n  # B = min(512, n)
    rng = np.random.default_rng([4, 1])
    want = np.concatenate([rng.permutation(n) for _ in range(30)])
    np.testing.assert_array_equal(s, want)
    s = lp.renggli_schedule(4, 1, 1000, steps=3)
    rng = np.random.default_rng([4, 1])
    np.testing.assert_array_equal(s, np.concatenate([rng.permutation(1000), rng.permutation(1000)])[: 3 * batch])


def test_renggli_seed_changes_runs(short_sgd):
    X, y = class_data(n=400, d=12, c=4, sep=0.3, seed=9)
    a = linear_probe(X, y, protocol="renggli", seed=0, split=(np.arange(300), np.arange(300, 400)),
                     return_details=True)
    b = linear_probe(X, y, protocol="renggli", seed=1, split=(np.arange(300), np.arange(300, 400)),
                     return_details=True)
    assert not np.array_equal(a.coef, b.coef)


# ------------------------------------------------------------------ paths: streaming, torch, memmap, threads


@pytest.mark.parametrize("protocol", ["lbfgs", "renggli"])
def test_streamed_path_is_bitwise_the_cached_path(monkeypatch, short_sgd, protocol):
    X, y = class_data(n=500, d=40, c=4, sep=0.4, seed=10)
    cached = linear_probe(X, y, protocol=protocol, return_details=True)
    monkeypatch.setattr(lp, "_CACHE_BYTES", 0)
    monkeypatch.setattr(lp, "_BLOCK_BYTES", 37 * 40 * 8)  # many blocks, a ragged last one
    streamed = linear_probe(X, y, protocol=protocol, return_details=True)
    monkeypatch.setattr(lp, "_CACHE_BYTES", 1 << 30)
    blocked = linear_probe(X, y, protocol=protocol, return_details=True)
    for other in (streamed,):
        assert other.score == blocked.score
        np.testing.assert_array_equal(other.coef, blocked.coef)
        assert other.loss == blocked.loss
    assert streamed.score == pytest.approx(cached.score, rel=TOL["oracle_rel"])


@pytest.mark.parametrize("blocked", [False, True])
@pytest.mark.parametrize("protocol", ["lbfgs", "renggli"])
def test_torch_design_matches_numpy_design(monkeypatch, tiny_sgd, protocol, blocked):
    """The CUDA path's torch code, run on CPU tensors (blocked: many row blocks and minibatch chunks)."""
    torch = pytest.importorskip("torch")
    if blocked:
        monkeypatch.setattr(lp, "_BLOCK_BYTES", 29 * 20 * 8)  # 29-row blocks; 7-row minibatch chunks
    X, y = class_data(n=500, d=20, c=4, sep=0.4, seed=11)
    codes = y.astype(np.int32)
    tr, va = _split(X, codes, 4, 0.2, 0)
    m = as_matrix(X)
    npd = lp._NumpyDesign(m, codes, tr, va, 4, True)
    tm = lp.Matrix(torch.from_numpy(X), "cuda", "float32", "features")  # torch on the CPU device
    td = lp._TorchDesign(tm, codes, tr, va, 4, True)
    np.testing.assert_allclose(td.mean, npd.mean, rtol=1e-12)
    np.testing.assert_allclose(td.scale, npd.scale, rtol=1e-12)
    if protocol == "lbfgs":
        a, b = lp._fit_lbfgs(npd, 1.0, 5000, 1e-10), lp._fit_lbfgs(td, 1.0, 5000, 1e-10)
        rel = 1e-6
    else:
        a, b = lp._fit_renggli(npd, 0), lp._fit_renggli(td, 0)
        np.testing.assert_array_equal(a["runs"], b["runs"])
        rel = 1e-9
    assert a["score"] == b["score"]
    np.testing.assert_allclose(a["coef"], b["coef"], rtol=0, atol=rel * np.abs(a["coef"]).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cached", [True, False])
def test_readonly_memmap_and_no_mutation(monkeypatch, tiny_sgd, tmp_path, dtype, cached):
    X, y = class_data(n=400, d=16, c=3, sep=0.4, seed=12, dtype=dtype)
    if not cached:
        monkeypatch.setattr(lp, "_CACHE_BYTES", 0)
    path = tmp_path / "bank.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    contiguous = (np.arange(0, 300), np.arange(300, 400))  # blocks of float64 rows read as views
    for protocol in ("lbfgs", "renggli"):
        for split in (None, contiguous):
            want = linear_probe(X.copy(), y, protocol=protocol, split=split)
            for inp in (mm, X):
                h = digest(inp, y)
                assert linear_probe(inp, y, protocol=protocol, split=split) == want
                assert digest(inp, y) == h


def test_dtypes_match_the_oracle_on_their_values():
    X, y = class_data(n=400, d=16, c=3, sep=0.4, seed=12)
    # float64 / float16 / int / bool go through the same path; each equals the oracle on its values
    for Xd in (X.astype(np.float64), X.astype(np.float16), np.round(X * 4).astype(np.int16), X > 0.3):
        got = linear_probe(Xd, y, return_details=True, **TIGHT)
        _assert_matches_oracle(got, _oracle(np.asarray(Xd, dtype=np.float64), y, got))


def test_torch_inputs_bf16_and_requires_grad():
    torch = pytest.importorskip("torch")
    X, y = class_data(n=300, d=12, c=3, sep=0.4, seed=13)
    t = torch.from_numpy(X).to(torch.bfloat16)
    got = linear_probe(t, torch.from_numpy(y), return_details=True, **TIGHT)
    _assert_matches_oracle(got, _oracle(t.float().numpy(), y, got))
    with pytest.raises(TypeError, match="detach"):
        linear_probe(torch.from_numpy(X).requires_grad_(), y)


def test_layouts_fortran_sliced_negative_stride():
    X, y = class_data(n=400, d=16, c=3, sep=0.4, seed=14)
    base = linear_probe(X, y)
    assert linear_probe(np.asfortranarray(X), y) == base
    big = np.zeros((800, 20), dtype=np.float32)
    big[::2, 2:18] = X
    assert linear_probe(big[::2, 2:18], y) == base
    assert linear_probe(X[::-1], y[::-1]) == base  # the split and the fit follow row contents
    rev = (np.arange(300, 400)[::-1], np.arange(300)[::-1])
    got = linear_probe(X[::-1], y[::-1], split=rev)
    assert got == pytest.approx(linear_probe(X, y, split=(np.arange(100), np.arange(100, 400))),
                                rel=TOL["oracle_rel"])


@pytest.mark.parametrize("protocol", ["lbfgs", "renggli"])
def test_thread_count_bitwise(monkeypatch, tiny_sgd, protocol):
    """Fixed chunks on 1..3 worker threads, BLAS pinned to one thread: the same bits."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    X, y = class_data(n=3000, d=300, c=6, sep=0.15, seed=15)  # 4 row chunks of a minibatch
    monkeypatch.setattr(lp, "_BLOCK_BYTES", 173 * 300 * 8)  # 14 row blocks, a ragged last one
    orig = lp._NumpyDesign.loss_grad
    seen = []

    def spy(self, W, b):
        blas = {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}
        seen.append((self.workers.n, tuple(sorted(blas))))
        return orig(self, W, b)

    monkeypatch.setattr(lp._NumpyDesign, "loss_grad", spy)
    out = []
    for t in (1, 2, 3):
        seen.clear()
        with transferlab.threads(t):
            out.append(linear_probe(X, y, protocol=protocol, return_details=True))
        assert set(seen) == {(t, (1,))}  # t workers, every BLAS on one thread
    assert 0.3 < out[0].score < 1.0
    for other in out[1:]:
        assert other.score == out[0].score
        np.testing.assert_array_equal(other.coef, out[0].coef)
        np.testing.assert_array_equal(other.intercept, out[0].intercept)
        assert other.n_iter == out[0].n_iter


@pytest.mark.parametrize("protocol", ["lbfgs", "renggli"])
def test_many_classes_memory_is_o_cd(tiny_sgd, protocol):
    """BAD_INPUTS.md row 13 (the suite's slow check at a smaller size): doubling C at fixed N must not
    grow peak memory by anything like an N x C float64 matrix (logits are formed by row blocks)."""
    import tracemalloc

    n, d = 6000, 4
    assert lp._block_rows(d, 3000) == lp._BLOCK_BYTES // (8 * 3000)
    peaks = []
    for c in (1500, 3000):
        rng = np.random.default_rng(c)
        y = rng.permutation(np.repeat(np.arange(c), n // c))
        X = (rng.normal(size=(n, d)) + (y % 7)[:, None]).astype(np.float32)
        tracemalloc.start()
        try:
            linear_probe(X, y, protocol=protocol, tol=1.0)  # lbfgs: one full loss pass is enough
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    # An N x C float64 matrix would add 8 * n * 1500 = 72 MB; blocks of _BLOCK_BYTES add little.
    assert peaks[1] - peaks[0] < 8 * n * 1500 // 4, peaks


# ------------------------------------------------------------------ properties


@pytest.mark.parametrize("protocol", ["lbfgs", "renggli"])
@pytest.mark.parametrize("cached", [True, False])
def test_row_permutation_is_bitwise_invariant(monkeypatch, tiny_sgd, protocol, cached):
    """BAD_INPUTS.md row 9: permuted rows, exact duplicates (same and other labels) -> the same bits."""
    X, y = class_data(n=500, d=16, c=4, sep=0.4, seed=16)
    X = np.concatenate([X, X[:40], X[:15]])
    y = np.concatenate([y, y[:40], (y[:15] + 1) % 4])
    if not cached:
        monkeypatch.setattr(lp, "_CACHE_BYTES", 0)
        monkeypatch.setattr(lp, "_BLOCK_BYTES", 37 * 16 * 8)
    base = linear_probe(X, y, protocol=protocol, return_details=True)
    for seed in (0, 1):
        perm = np.random.default_rng(seed).permutation(y.size)
        got = linear_probe(X[perm], y[perm], protocol=protocol, return_details=True)
        assert got.score == base.score and got.loss == base.loss
        np.testing.assert_array_equal(got.coef, base.coef)
        np.testing.assert_array_equal(got.intercept, base.intercept)
        np.testing.assert_array_equal(got.mean, base.mean)
        # the same contents held out (which copy of a duplicate does not matter)
        np.testing.assert_array_equal(X[perm][got.val_index], X[base.val_index])
        np.testing.assert_array_equal(y[perm][got.train_index], y[base.train_index])


def test_row_permutation_with_the_split_carried_along():
    X, y = class_data(n=500, d=16, c=4, sep=0.4, seed=16)
    base = linear_probe(X, y, return_details=True, **TIGHT)
    perm = np.random.default_rng(0).permutation(500)
    inv = np.argsort(perm)
    got = linear_probe(X[perm], y[perm], split=(inv[base.train_index], inv[base.val_index]), return_details=True,
                       **TIGHT)
    assert got.score == base.score
    np.testing.assert_allclose(got.coef, base.coef, rtol=0, atol=1e-6 * np.abs(base.coef).max())


def test_bijective_relabelling_including_strings():
    X, y = class_data(n=500, d=16, c=4, sep=0.4, seed=17)
    base = linear_probe(X, y, return_details=True)
    names = np.array(["zebra", "ant", "moth", "cat"])  # not order-preserving
    for lab in (y + 10, y * -3, names[y], (3 - y).astype(np.float64), [str(v) for v in y]):
        got = linear_probe(X, lab, return_details=True)
        np.testing.assert_array_equal(got.val_index, base.val_index)  # the split ignores label values
        assert got.score == pytest.approx(base.score, rel=TOL["oracle_rel"])


def test_feature_column_permutation_and_affine_invariance():
    """The fit is blind to column order and per-feature affine maps. The seeded split follows the
    row contents, so a transformed bank draws another split: the same split is passed here."""
    X, y = class_data(n=500, d=16, c=4, sep=0.4, seed=18)
    base = linear_probe(X, y, return_details=True, **TIGHT)
    split = (base.train_index, base.val_index)
    perm = np.random.default_rng(1).permutation(16)
    assert not np.array_equal(linear_probe(X[:, perm], y, return_details=True).val_index, base.val_index)
    got = linear_probe(X[:, perm], y, split=split, return_details=True, **TIGHT)
    assert got.score == base.score
    np.testing.assert_allclose(got.coef, base.coef[:, perm], rtol=0, atol=1e-6 * np.abs(base.coef).max())
    # standardisation makes the score blind to per-feature shift and scale
    scaled = linear_probe(X.astype(np.float64) * np.linspace(0.1, 30, 16) + 7.0, y, split=split, **TIGHT)
    assert scaled == base.score


# ------------------------------------------------------------------ bad input (BAD_INPUTS.md)


def test_nan_raise_and_omit(caplog):
    X, y = class_data(n=300, d=8, c=3, sep=0.4, seed=19)
    Xn = X.copy()
    Xn[[5, 77]] = np.nan
    with pytest.raises(ValueError, match="2 row\\(s\\) \\(first at row 5\\)"):
        linear_probe(Xn, y)
    res = linear_probe(Xn, y, nan_policy="omit", return_details=True)
    assert 5 not in res.train_index and 77 not in res.val_index and 5 not in res.val_index
    keep = np.setdiff1d(np.arange(300), [5, 77])
    assert res.score == linear_probe(X[keep], y[keep])
    with pytest.raises(ValueError, match="cannot be combined"):
        linear_probe(Xn, y, nan_policy="omit", split=(np.arange(200), np.arange(200, 290)))


def test_shapes_sizes_and_classes():
    with pytest.raises(ValueError, match="n_samples=0"):
        linear_probe(np.zeros((0, 3)), [])
    with pytest.raises(ValueError, match="n_features=0"):
        linear_probe(np.zeros((5, 0)), [0, 1, 0, 1, 0])
    for n in (1, 2):
        with pytest.raises(ValueError, match="at least 3 samples"):
            linear_probe(np.ones((n, 2)), list(range(n)))
    with pytest.raises(ValueError, match="need at least 2 classes, got 1"):
        linear_probe(np.random.rand(10, 2), np.zeros(10))
    with pytest.raises(ValueError, match="length 9 but the features have n_samples=10"):
        linear_probe(np.random.rand(10, 2), np.zeros(9))
    with pytest.raises(ValueError, match="2-D"):
        linear_probe(np.random.rand(10), np.zeros(10))
    with pytest.raises(ValueError, match="pool spatial"):
        linear_probe(np.random.rand(10, 3, 2, 2), np.arange(10) % 2)
    with pytest.raises(ValueError, match="look continuous"):
        linear_probe(np.random.rand(10, 2), np.linspace(0, 1, 10))
    with pytest.raises(TypeError, match="complex"):
        linear_probe(np.ones((10, 2), dtype=complex), np.arange(10) % 2)


def test_bad_keywords():
    X, y = class_data(n=60, d=4, c=2, seed=20)
    cases = [
        (dict(protocol="sgd"), ValueError, "protocol"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=1.5), TypeError, "seed"),
        (dict(C=0), ValueError, "C must"),
        (dict(C=float("inf")), ValueError, "C must"),
        (dict(max_iter=0), ValueError, "max_iter"),
        (dict(tol=-1.0), ValueError, "tol"),
        (dict(device="tpu"), ValueError, "device"),
        (dict(nan_policy="drop"), ValueError, "nan_policy"),
    ]
    for kw, err, msg in cases:
        with pytest.raises(err, match=msg):
            linear_probe(X, y, **kw)


def test_cuda_requested_without_cuda_is_actionable():
    if CUDA_READY:
        pytest.skip("a CUDA device is present")
    X, y = class_data(n=60, d=4, c=2, seed=21)
    with pytest.raises(RuntimeError, match="device='cpu'|TRANSFERLAB_CUDA"):
        linear_probe(X, y, device="cuda")


def test_registered_and_result_type():
    assert "linear_probe" in transferlab.scores.available()
    X, y = class_data(n=200, d=6, c=3, seed=22)
    assert transferlab.score("linear_probe", X, y) == _linear_probe(X, y)
    res = linear_probe(X, y, return_details=True)
    assert isinstance(res, LinearProbeResult) and isinstance(linear_probe(X, y), float)
    np.testing.assert_array_equal(res.classes, [0, 1, 2])


def test_device_fixture_agrees(device):
    X, y = class_data(n=400, d=16, c=3, sep=0.4, seed=23)
    cpu = linear_probe(X, y, device="cpu", **TIGHT)
    assert linear_probe(X, y, device=device, **TIGHT) == pytest.approx(cpu, rel=TOL["oracle_rel"])


# ------------------------------------------------------------------ CUDA


@pytest.mark.cuda
@pytest.mark.parametrize("protocol", ["lbfgs", "renggli"])
def test_cuda_matches_cpu(short_sgd, protocol):
    import torch

    X, y = class_data(n=2000, d=64, c=8, sep=0.3, seed=24)
    cpu = linear_probe(X, y, protocol=protocol, return_details=True, **TIGHT)
    for inp in (X, torch.from_numpy(X).cuda()):
        gpu = linear_probe(inp, y, protocol=protocol, device="cuda", return_details=True, **TIGHT)
        assert gpu.score == cpu.score
        np.testing.assert_allclose(gpu.coef, cpu.coef, rtol=0, atol=1e-6 * np.abs(cpu.coef).max())
    auto = linear_probe(torch.from_numpy(X).cuda().half(), y, protocol=protocol, return_details=True)
    assert 0 < auto.score <= 1
