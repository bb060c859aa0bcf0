"""Streaming linear probe (``LinearProbeStream``): equal to ``tl.linear_probe`` (score to 1e-9, and the
L-BFGS iteration count) for chunk sizes {1, 7, 1000, N}, merge orders forward / reverse / random /
tree, forks through pickle, a read-only memmap through ``streaming.run``, labels first seen late,
duplicate rows that straddle the split; and the errors of bad use."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import transferlab as tl
from transferlab.scores import streaming
from transferlab.core.lbfgs import LBFGS
from transferlab.core.lbfgs import minimize as _lbfgs
from transferlab.scores.streaming import LinearProbeStream

from _score_checks import class_data, digest, digits_features, rel

ONE_SHOT_REL = 1e-9


def _chunks(X, y, size):
    return [(X[s : s + size], y[s : s + size]) for s in range(0, len(y), size)]


def _feed(st, X, y, size):
    """Every pass of ``st`` over (X, y) in chunks of ``size`` rows."""
    while not st.complete:
        for Xc, yc in _chunks(X, y, size):
            st.update(Xc, yc)
        st.end_pass()
    return st


def _with_workers(st, X, y, size, order, pickled=False):
    """Every pass: one fork per chunk (a worker), merged back in ``order``."""
    rng = np.random.default_rng(7)
    while not st.complete:
        parts = [st.fork().update(Xc, yc) for Xc, yc in _chunks(X, y, size)]
        if pickled:
            parts = [pickle.loads(pickle.dumps(p)) for p in parts]
        if order == "tree":  # pairs of pairs, then into the parent
            while len(parts) > 1:
                parts = [parts[i].merge(parts[i + 1]) if i + 1 < len(parts) else parts[i]
                         for i in range(0, len(parts), 2)]
            st.merge(parts[0])
        else:
            idx = {"forward": range(len(parts)), "reverse": reversed(range(len(parts))),
                   "random": rng.permutation(len(parts))}[order]
            for i in idx:
                st.merge(parts[i])
        st.end_pass()
    return st


def _random(n=300, d=10, c=4, seed=4):
    X, y = class_data(n=n, d=d, c=c, sep=1.0, seed=seed)
    return (X + 3.0).astype(np.float32), y


def _check_equal(st, want):
    assert rel(st.compute(), want.score) < ONE_SHOT_REL
    assert st.n_iter == want.n_iter
    assert rel(st.loss, want.loss) < 1e-9
    np.testing.assert_allclose(st.mean, want.mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(st.scale, want.scale, rtol=1e-12)


# ------------------------------------------------------------------ equal to the one-shot


@pytest.mark.parametrize("size", [1, 7, 1000, None])
def test_chunk_sizes_random(size):
    X, y = _random(n=300 if size == 1 else 1200)
    want = tl.linear_probe(X, y, return_details=True)
    st = _feed(LinearProbeStream(), X, y, size or len(y))
    _check_equal(st, want)
    # passes: keys, then per fold (cv=5): mean, var, one per loss evaluation of the solver, accuracy
    assert st.pass_index == st.n_passes == 1 + 5 * 3 + st.n_evals
    assert st.n_evals > st.n_iter
    one = _feed(LinearProbeStream(cv=None), X, y, size or len(y))  # one split: keys, mean, var, fit..., accuracy
    assert one.pass_index == 3 + one.n_evals + 1
    assert rel(one.compute(), tl.linear_probe(X, y, cv=None)) < ONE_SHOT_REL


@pytest.mark.parametrize("size", [7, 1000, None])
@pytest.mark.parametrize("kw", [{}, {"C": 0.1, "seed": 3, "val_fraction": 0.3}])
def test_chunk_sizes_digits(size, kw):
    H, y = digits_features()
    want = tl.linear_probe(H, y, return_details=True, **kw)
    st = _feed(LinearProbeStream(**kw), H, y, size or len(y))
    _check_equal(st, want)
    # The iterates are the one-shot's up to the rounding of the sums (chunk order, not fixed blocks).
    np.testing.assert_allclose(st.coef, want.coef, atol=1e-4)


def test_chunk_size_one_digits_subset():
    H, y = digits_features()
    H, y = H[:300], y[:300]
    want = tl.linear_probe(H, y, return_details=True)
    _check_equal(_feed(LinearProbeStream(), H, y, 1), want)


def test_unstandardised_same_score():
    # Raw ReLU features make an ill-conditioned problem: rounding moves the iterate where the
    # objective is flat, so the iteration count may differ; the accuracy does not.
    H, y = digits_features()
    want = tl.linear_probe(H, y, standardize=False, return_details=True)
    st = _feed(LinearProbeStream(standardize=False), H, y, 500)
    assert rel(st.compute(), want.score) < ONE_SHOT_REL
    assert rel(st.loss, want.loss) < 1e-6
    assert st.pass_index == 1 + st.n_evals + 5  # no moment passes: keys, then per fold fits and accuracy
    np.testing.assert_array_equal(st.mean, 0.0)


@pytest.mark.parametrize("order", ["forward", "reverse", "random", "tree"])
def test_merge_orders(order):
    X, y = _random(n=600)
    want = tl.linear_probe(X, y, return_details=True)
    _check_equal(_with_workers(LinearProbeStream(), X, y, 70, order), want)


def test_forks_through_pickle_and_state_pickles_mid_run():
    H, y = digits_features()
    want = tl.linear_probe(H, y, return_details=True)
    st = LinearProbeStream()
    for _ in range(6):  # a few passes, then the whole state travels (a checkpoint)
        for Xc, yc in _chunks(H, y, 400):
            st.update(Xc, yc)
        st.end_pass()
    st = pickle.loads(pickle.dumps(st))
    _check_equal(_with_workers(st, H, y, 400, "random", pickled=True), want)


def test_run_on_readonly_memmap(tmp_path):
    X, y = _random(n=900)
    np.save(tmp_path / "bank.npy", X)
    mm = np.load(tmp_path / "bank.npy", mmap_mode="r")
    h = digest(mm, y)
    want = tl.linear_probe(X, y)
    assert rel(streaming.run("linear_probe", mm, y, chunk_rows=128), want) < ONE_SHOT_REL
    assert rel(streaming.run("linear_probe", mm, y, chunk_rows=128, C=0.5), tl.linear_probe(X, y, C=0.5)) \
        < ONE_SHOT_REL
    assert digest(mm, y) == h


def test_half_precision_and_torch_chunks():
    torch = pytest.importorskip("torch")
    X, y = _random(n=500)
    h = X.astype(np.float16)
    want = tl.linear_probe(h, y, return_details=True)
    _check_equal(_feed(LinearProbeStream(), h, y, 64), want)
    t = torch.from_numpy(X)
    st = LinearProbeStream()
    while not st.complete:
        for s in range(0, 500, 90):
            st.update(t[s : s + 90], torch.from_numpy(y[s : s + 90]))
        st.end_pass()
    _check_equal(st, tl.linear_probe(X, y, return_details=True))


def test_labels_seen_late_strings_and_no_mutation():
    H, y = digits_features()
    names = np.array([f"class-{k}" for k in range(10)])[y]
    order = np.argsort(y, kind="stable")  # every chunk holds one or two classes only
    Hs, ns = H[order], names[order]
    h = digest(Hs, ns)
    st = _feed(LinearProbeStream(), Hs, ns, 250)
    want = tl.linear_probe(H, names, return_details=True)
    _check_equal(st, want)
    assert list(st.classes) == sorted(set(names))
    assert digest(Hs, ns) == h


def test_duplicate_rows_straddling_the_split():
    # Most of class 0 is one repeated row (also present in class 1): that group sits across the
    # train/validation cut, so its copies count with weight k/n in train and 1 - k/n in validation.
    X, y = class_data(n=300, d=6, c=3, sep=1.0, seed=2)
    c0 = np.flatnonzero(y == 0)
    X[c0[: int(0.8 * c0.size)]] = X[c0[0]]
    X[np.flatnonzero(y == 1)[:10]] = X[c0[0]]
    want = tl.linear_probe(X, y, return_details=True)
    for size in (1, 7, 300):
        st = _feed(LinearProbeStream(), X, y, size)
        assert np.any((st._wtrain > 0) & (st._wtrain < 1))  # the case under test happens
        _check_equal(st, want)


def test_nan_omit_and_max_iter_warning():
    X, y = _random(n=400)
    Xn = X.copy()
    Xn[[3, 50], 1] = np.nan
    keep = ~np.isnan(Xn).any(axis=1)
    want = tl.linear_probe(X[keep], y[keep], return_details=True)
    _check_equal(_feed(LinearProbeStream(nan_policy="omit"), Xn, y, 64), want)
    st = LinearProbeStream(max_iter=3)
    with pytest.warns(UserWarning, match="max_iter=3"):
        _feed(st, X, y, 100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        want = tl.linear_probe(X, y, max_iter=3, return_details=True)
    assert st.n_iter == 3 and not st.converged
    assert rel(st.compute(), want.score) < ONE_SHOT_REL


def test_single_sample_class_warns_and_matches():
    X, y = _random(n=300)
    y = y.copy()
    y[17] = 9  # a class with one sample: train only, one UserWarning (as the one-shot)
    with pytest.warns(UserWarning, match="single sample"):
        want = tl.linear_probe(X, y, return_details=True)
    st = LinearProbeStream()
    with pytest.warns(UserWarning, match="single sample"):
        st.update(X[:150], y[:150]).update(X[150:], y[150:]).end_pass()
    _check_equal(_feed(st, X, y, 150), want)


def test_registered_and_phases():
    assert "linear_probe" in streaming.available_streams()
    st = streaming.stream("linear_probe", C=2.0)
    assert isinstance(st, LinearProbeStream) and st.params["C"] == 2.0
    X, y = _random(n=200)
    seen = []
    while not st.complete:
        seen.append(st.phase)
        st.update(X, y).end_pass()
    assert seen[:3] == ["keys", "mean", "var"] and seen[-1] == "accuracy"
    # cv=5: each fold runs mean, var, fit..., accuracy in turn
    assert seen.count("accuracy") == seen.count("mean") == seen.count("var") == 5 and st.phase == "done"
    folds = "".join({"keys": "k", "mean": "m", "var": "v", "fit": "f", "accuracy": "a"}[p] for p in seen)
    import re

    assert re.fullmatch(r"k(mvf+a){5}", folds)


# ------------------------------------------------------------------ the solver in reverse communication


def test_lbfgs_state_machine_pickles_and_resumes():
    A = np.diag(np.linspace(1.0, 30.0, 20))

    def fun(x):
        return 0.5 * float(x @ A @ x) + float(np.sum(x)), A @ x + 1.0

    whole = _lbfgs(fun, np.full(20, 2.0), 500, 1e-10, 0.0)
    opt = LBFGS(np.full(20, 2.0), 500, 1e-10, 0.0)
    for _ in range(7):
        opt.tell(*fun(opt.point))
    opt = pickle.loads(pickle.dumps(opt))
    while not opt.done:
        opt.tell(*fun(opt.point))
    x, f, it, status = opt.result
    assert status == 0 and it == whole[2] and f == whole[1]
    np.testing.assert_array_equal(x, whole[0])
    with pytest.raises(RuntimeError, match="finished"):
        opt.tell(0.0, x)


# ------------------------------------------------------------------ bad use


def test_options_that_cannot_stream():
    with pytest.raises(ValueError, match="renggli.*cannot be streamed.*protocol='lbfgs'"):
        LinearProbeStream(protocol="renggli")
    with pytest.raises(ValueError, match="split= cannot be streamed"):
        LinearProbeStream(split=(np.arange(3), np.arange(3, 5)))
    with pytest.raises(ValueError, match="return_details"):
        LinearProbeStream(return_details=True)
    with pytest.raises(ValueError, match="device"):
        LinearProbeStream(device="cuda")
    with pytest.raises(ValueError, match="protocol"):
        LinearProbeStream(protocol="sgd")
    with pytest.raises(ValueError, match="val_fraction"):
        LinearProbeStream(val_fraction=1.0)
    with pytest.raises(ValueError, match="C must be"):
        LinearProbeStream(C=0)
    with pytest.raises(ValueError, match="nan_policy"):
        LinearProbeStream(nan_policy="drop")


def test_bad_rows_and_passes():
    X, y = _random(n=200)
    Xn = X.copy()
    Xn[5, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        LinearProbeStream().update(Xn, y)
    with pytest.raises(ValueError, match="n_features"):
        LinearProbeStream().update(X, y).update(X[:, :3], y)
    with pytest.raises(ValueError, match="need at least 2 classes, got 1"):
        LinearProbeStream().update(X, np.zeros(200, dtype=int)).end_pass()
    with pytest.raises(ValueError, match="at least 3 samples"):
        LinearProbeStream().update(X[:2], y[:2]).end_pass()
    with pytest.raises(ValueError, match="n_samples=0"):
        LinearProbeStream().end_pass()
    st = LinearProbeStream().update(X, y)
    with pytest.raises(ValueError, match="more passes"):
        st.compute()
    st.end_pass()
    with pytest.raises(ValueError, match="not seen in the first pass"):
        st.update(X[:5], np.full(5, 99))
    with pytest.raises(ValueError, match="first pass did not see"):
        st.fork().update(X[:5] + 1.0, y[:5])  # other rows
    with pytest.raises(ValueError, match="first pass did not see"):
        st.fork().update(X[:5], (y[:5] + 1) % 4)  # the same rows with other labels
    st.update(X[:-1], y[:-1])
    with pytest.raises(ValueError, match="saw 199 rows but the first pass saw 200"):
        st.end_pass()
    st.update(X[-1:], y[-1:]).end_pass()  # mean pass done
    st.update(X, y).end_pass()  # var pass done: now the fit passes
    assert st.phase == "fit"
    fork = st.fork().update(X, y)
    with pytest.raises(ValueError, match="fork"):
        fork.end_pass()
    stranger = LinearProbeStream()
    with pytest.raises(ValueError, match="pass 1 into one in pass 4"):
        st.merge(stranger.update(X, y))
    with pytest.raises(ValueError, match="different options"):
        st.merge(LinearProbeStream(C=2.0))
    with pytest.raises(TypeError):
        st.merge(object())
