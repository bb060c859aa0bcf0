"""sfda: the fast path against the float64 oracle written from SCORES.md, parity with the authors'
published algorithm, properties, dtypes and bad input (BAD_INPUTS.md)."""
from __future__ import annotations

import functools
import importlib
import warnings

import numpy as np
import pytest

import transferlab
from transferlab import kernels
from transferlab.core.arrays import Matrix, as_labels
from transferlab.reference import sfda as ref
from transferlab.reference import sfda_published as pub
from transferlab.scores import sfda

from conftest import TOL, class_data, digest

sfda_mod = importlib.import_module("transferlab.scores.sfda.one_shot")
REL = TOL["oracle_rel"]


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data, d.target


@functools.lru_cache(maxsize=1)
def _digits_mlp():
    """Hidden ReLU features of a small MLP trained on digits: embedding-like, with dead units (zero
    columns, a singular S_w) and N > D."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    d = load_digits()
    X, y = d.data / 16.0, d.target
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few epochs are enough here
        clf = MLPClassifier(hidden_layer_sizes=(256,), max_iter=10, random_state=0).fit(X, y)
    H = np.maximum(X @ clf.coefs_[0] + clf.intercepts_[0], 0.0).astype(np.float32)
    return H, y


def _duplicates(seed=0):
    """1000 rows drawn from 60 distinct points: heavy exact duplication, several labels per point."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(60, 20))
    idx = rng.integers(0, 60, size=1000)
    return base[idx].astype(np.float32), (idx % 4 + rng.integers(0, 2, size=1000)) % 5


DATASETS = {
    "blobs_overlap": lambda: class_data(n=800, d=40, c=6, sep=0.4, seed=1),
    "blobs_separated": lambda: class_data(n=600, d=24, c=4, sep=3.0, seed=2),
    "many_classes": lambda: class_data(n=1500, d=30, c=40, sep=0.6, seed=3),
    "digits": _digits,
    "digits_mlp": _digits_mlp,
    "duplicates": _duplicates,
}


def _run(X, y, device, **kw):
    if device == "cuda":
        import torch

        X = torch.from_numpy(np.ascontiguousarray(X)).cuda()
    return sfda(X, y, device=device, **kw)


# ------------------------------------------------------------------ oracle and published parity


@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize("log", [False, True])
def test_matches_oracle(name, log, device):
    X, y = DATASETS[name]()
    want = ref.sfda(X, y, log=log)[0]
    got = _run(X, y, device, log=log)
    assert got == pytest.approx(want, rel=REL)
    if not log:
        assert 0.0 < got <= 1.0
    else:
        assert got <= 0.0


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_parity_with_published_algorithm(name):
    X, y = DATASETS[name]()
    published = pub.sfda_score(X, y)
    assert ref.sfda(X, y)[0] == pytest.approx(published, rel=TOL["published_rel"])
    assert sfda(X, y, device="cpu") == pytest.approx(published, rel=TOL["published_rel"])


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_cholesky_solver_matches_oracle(name):
    # coef = M S_w'^-1 by Cholesky equals M V V^T (all D eigenvectors): same score, cheaper.
    X, y = DATASETS[name]()
    want = ref.sfda(X, y)[0]
    assert sfda(X, y, device="cpu", solver="cholesky") == pytest.approx(want, rel=REL)
    lab = as_labels(y)
    import torch

    t = torch.from_numpy(np.ascontiguousarray(X))
    m = Matrix(t, "cuda", str(t.dtype).replace("torch.", ""), "features")
    assert sfda_mod._sfda(m, lab.codes, lab.n_classes, 5.0, False, "cuda", "cholesky") == pytest.approx(want, rel=REL)


def test_a_changes_lambda():
    X, y = class_data(n=500, d=10, c=3, sep=0.5, seed=4)
    X = X * 0.1  # small scatter: lambda = exp(-a * lambda_max) is not at its 1e-10 floor
    lams = [ref.sfda(X, y, a=a)[1] for a in (0.0, 5.0, 50.0)]
    assert lams[0] == 1.0 and 1e-10 < lams[2] < lams[1] < 1.0
    for a in (0.0, 5.0, 50.0):
        assert sfda(X, y, a=a, device="cpu") == pytest.approx(ref.sfda(X, y, a=a)[0], rel=REL)
        assert sfda(X, y, a=a, device="cpu") == pytest.approx(pub.sfda_score(X, y, a=a), rel=REL)


def test_largest_eigenvalue_is_the_published_estimate():
    rng = np.random.default_rng(5)
    B = rng.normal(size=(30, 30))
    S = B @ B.T
    x = S.sum(axis=1)
    for _ in range(3):
        t = S @ x
        u = t / np.linalg.norm(t)
        t = S @ u
        x = t / np.linalg.norm(t)
    want = x @ S @ u
    assert ref.largest_eigenvalue(S) == want
    assert sfda_mod._largest_eigenvalue(S, sfda_mod._NumpyLA) == pytest.approx(want, rel=1e-15)
    # Zero start vector: the exact eigenvalue instead of the published NaN.
    Z = np.array([[1.0, -1.0], [-1.0, 1.0]])  # rows sum to 0, eigenvalues 0 and 2
    assert ref.largest_eigenvalue(Z) == pytest.approx(2.0)
    assert sfda_mod._largest_eigenvalue(Z, sfda_mod._NumpyLA) == pytest.approx(2.0)


def test_torch_path_logic_on_cpu_tensors():
    # The "cuda" code path (torch algebra, Cholesky-reduced eigh, chunked torch projections)
    # run on CPU tensors, so its logic is tested without a GPU.
    import torch

    for name in ("blobs_overlap", "digits", "many_classes"):
        X, y = DATASETS[name]()
        t = torch.from_numpy(np.ascontiguousarray(X))
        m = Matrix(t, "cuda", str(t.dtype).replace("torch.", ""), "features")
        lab = as_labels(y)
        for log in (False, True):
            got = sfda_mod._sfda(m, lab.codes, lab.n_classes, 5.0, log, "cuda")
            assert got == pytest.approx(ref.sfda(X, lab.codes, log=log)[0], rel=REL)


def test_chunked_prediction_and_large_c(monkeypatch):
    # Small chunk budgets: the prediction passes run over many row blocks, and the anchors' logits
    # are gathered per block (the path used for very many classes).
    X, y = DATASETS["many_classes"]()
    want = sfda(X, y, device="cpu")
    monkeypatch.setattr(sfda_mod, "_LOGIT_BYTES", 8 * 40 * 7)  # 7 rows per block
    monkeypatch.setattr(sfda_mod, "_ANCHOR_LOGITS_BYTES", 0)
    assert sfda(X, y, device="cpu") == pytest.approx(want, rel=1e-12)


# ------------------------------------------------------------------ properties


def test_row_permutation():
    X, y = DATASETS["blobs_overlap"]()
    perm = np.random.default_rng(0).permutation(len(y))
    assert sfda(X[perm], y[perm], device="cpu") == pytest.approx(sfda(X, y, device="cpu"), rel=1e-10)


def test_relabelling_and_string_labels():
    X, y = DATASETS["blobs_overlap"]()
    base = sfda(X, y, device="cpu")
    bij = np.array([5, 3, 9, 0, 7, 1])[y]  # a bijection that changes the class order
    names = np.array(["zebra", "ant", "cat", "dog", "eel", "fox"])[y]
    gaps = y * 10 - 7  # gaps and negatives
    for labels in (bij, names, gaps, y.astype(np.float64), y.reshape(-1, 1)):
        assert sfda(X, labels, device="cpu") == pytest.approx(base, rel=1e-10)
    assert sfda(X, list(names), device="cpu") == pytest.approx(base, rel=1e-10)


def test_column_permutation():
    X, y = DATASETS["blobs_overlap"]()
    perm = np.random.default_rng(1).permutation(X.shape[1])
    assert sfda(X[:, perm], y, device="cpu") == pytest.approx(sfda(X, y, device="cpu"), rel=1e-9)


def test_thread_count_bitwise():
    X, y = class_data(n=1200, d=70, c=5, sep=0.5, seed=6)
    scores = []
    for t in (1, 2, 3):
        with transferlab.threads(t):
            scores.append(sfda(X, y, device="cpu"))
    assert scores[0] == scores[1] == scores[2]


def test_no_mutation_numpy_and_torch():
    import torch

    X, y = DATASETS["blobs_overlap"]()
    before = digest(X, y)
    sfda(X, y, device="cpu")
    sfda(X, y, device="reference")
    assert digest(X, y) == before
    t = torch.from_numpy(X.copy())
    before = digest(t)
    sfda(t, torch.from_numpy(y), device="cpu")
    assert digest(t) == before


def test_read_only_memmap(tmp_path):
    X, y = DATASETS["blobs_overlap"]()
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    before = digest(mm)
    assert sfda(mm, y, device="cpu") == pytest.approx(sfda(X, y, device="cpu"), rel=1e-15)
    assert digest(mm) == before


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_dtypes_via_torch(dtype):
    import torch

    X, y = DATASETS["blobs_overlap"]()
    t = torch.from_numpy(X).to(getattr(torch, dtype))
    exact = t.to(torch.float64).numpy()  # the values the kernels must see (upcast exactly)
    assert sfda(t, y, device="cpu") == pytest.approx(ref.sfda(exact, y)[0], rel=REL)


def test_int_bool_and_layouts():
    X, y = DATASETS["blobs_overlap"]()
    Xi = np.round(X * 4).astype(np.int16)
    assert sfda(Xi, y, device="cpu") == pytest.approx(ref.sfda(Xi.astype(np.float64), y)[0], rel=REL)
    Xb = X > 0.3
    assert sfda(Xb, y, device="cpu") == pytest.approx(ref.sfda(Xb.astype(np.float64), y)[0], rel=REL)
    base = sfda(X, y, device="cpu")
    big = np.zeros((X.shape[0] * 2, X.shape[1] + 7), dtype=np.float32)
    big[::2, 3 : 3 + X.shape[1]] = X
    assert sfda(big[::2, 3 : 3 + X.shape[1]], y, device="cpu") == pytest.approx(base, rel=1e-12)
    assert sfda(np.asfortranarray(X), y, device="cpu") == pytest.approx(base, rel=1e-12)
    assert sfda(X[::-1], y[::-1], device="cpu") == pytest.approx(base, rel=1e-10)


def test_registry():
    X, y = DATASETS["blobs_separated"]()
    assert "sfda" in transferlab.available()
    assert transferlab.score("sfda", X, y, device="cpu") == sfda(X, y, device="cpu")


# ------------------------------------------------------------------ bad input (BAD_INPUTS.md)


def test_nan_raise_and_omit():
    X, y = DATASETS["blobs_overlap"]()
    Xn = X.copy()
    Xn[[3, 10]] = np.nan
    Xn[20, 0] = np.inf
    with pytest.raises(ValueError, match=r"features contains NaN or inf in 3 row\(s\) \(first at row 3\)"):
        sfda(Xn, y)
    keep = np.setdiff1d(np.arange(len(y)), [3, 10, 20])
    got = sfda(Xn, y, nan_policy="omit", device="cpu")
    assert got == pytest.approx(sfda(X[keep], y[keep], device="cpu"), rel=1e-12)


def test_empty_and_too_few():
    with pytest.raises(ValueError, match="n_samples=0"):
        sfda(np.zeros((0, 3)), np.zeros(0))
    with pytest.raises(ValueError, match="n_features=0"):
        sfda(np.zeros((4, 0)), np.arange(4))
    with pytest.raises(ValueError, match="at least 2 samples"):
        sfda(np.ones((1, 3)), [0])
    with pytest.raises(ValueError, match="need at least 2 classes, got 1"):
        sfda(np.random.default_rng(0).normal(size=(10, 3)), np.zeros(10))


def test_label_errors():
    X, y = DATASETS["blobs_separated"]()
    with pytest.raises(ValueError, match="look continuous"):
        sfda(X, y + 0.5)
    with pytest.raises(ValueError, match="length 599 but the features have n_samples=600"):
        sfda(X, y[:-1])
    with pytest.raises(ValueError, match="must be 1-D"):
        sfda(X, np.stack([y, y], axis=1))


def test_shape_and_type_errors():
    import torch

    X, y = DATASETS["blobs_separated"]()
    with pytest.raises(ValueError, match="reshape"):
        sfda(X[:, 0], y)
    with pytest.raises(ValueError, match="pool spatial"):
        sfda(X.reshape(600, 4, 6, 1), y)
    with pytest.raises(TypeError, match="complex"):
        sfda(X.astype(np.complex64), y)
    with pytest.raises(TypeError, match="detach"):
        sfda(torch.from_numpy(X).requires_grad_(True), y)
    with pytest.raises(TypeError, match="a must be a finite real"):
        sfda(X, y, a=float("nan"))
    with pytest.raises(ValueError, match="a must be >= 0"):
        sfda(X, y, a=-1.0)
    with pytest.raises(TypeError, match="log must be a bool"):
        sfda(X, y, log="yes")
    with pytest.raises(ValueError, match="device must be one of"):
        sfda(X, y, device="tpu")
    with pytest.raises(ValueError, match="solver must be one of"):
        sfda(X, y, solver="svd")


def test_singleton_class_is_finite():
    X, y = DATASETS["blobs_overlap"]()
    y = y.copy()
    y[0] = 99  # a class with one sample
    got = sfda(X, y, device="cpu")
    assert np.isfinite(got)
    assert got == pytest.approx(ref.sfda(X, as_labels(y).codes)[0], rel=REL)


def test_many_classes():
    # BAD_INPUTS 13: thousands of classes work without an N x C one-hot (memory O(C D) plus
    # bounded prediction blocks).
    rng = np.random.default_rng(9)
    C, d = 1200, 5
    y = np.repeat(np.arange(C), 3)
    X = (rng.normal(size=(C, d)) * 3)[y] + rng.normal(size=(3 * C, d))
    assert sfda(X, y, device="cpu") == pytest.approx(ref.sfda(X, y)[0], rel=REL)


def test_zero_within_scatter_is_an_error():
    X = np.repeat(np.eye(3), 4, axis=0)  # every class is one repeated point
    y = np.repeat(np.arange(3), 4)
    with pytest.raises(ValueError, match="within-class scatter is zero"):
        sfda(X, y, device="cpu")


def test_n_le_d_warns_and_stays_finite():
    X, y = class_data(n=60, d=100, c=3, sep=0.2, seed=7)
    with pytest.warns(UserWarning, match="saturates"):
        got = sfda(X, y, device="cpu")
    assert np.isfinite(got) and got > 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert got == pytest.approx(ref.sfda(X, y)[0], rel=1e-5)


def test_cuda_tensor_without_cuda_build_or_device():
    if kernels.cuda_device_count() > 0:
        pytest.skip("a CUDA device is present")
    X, y = DATASETS["blobs_separated"]()
    with pytest.raises(RuntimeError, match="device='cpu'|TRANSFERLAB_CUDA=ON"):
        sfda(X, y, device="cuda")


@pytest.mark.cuda
def test_cuda_matches_cpu_and_accepts_torch_cuda():
    import torch

    X, y = class_data(n=5000, d=256, c=10, sep=0.3, seed=8)
    cpu = sfda(X, y, device="cpu")
    assert sfda(X, y, device="cuda") == pytest.approx(cpu, rel=1e-6)
    assert sfda(X, y, device="cuda", solver="cholesky") == pytest.approx(cpu, rel=1e-6)
    t = torch.from_numpy(X).cuda()
    before = digest(t)
    assert sfda(t, torch.from_numpy(y).cuda()) == pytest.approx(cpu, rel=1e-6)
    assert sfda(t.to(torch.bfloat16), y) == pytest.approx(sfda(t.to(torch.bfloat16).cpu(), y, device="cpu"), rel=1e-6)
    assert digest(t) == before
