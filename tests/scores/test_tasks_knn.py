"""k-NN leave-one-out with task="regression" (R^2) and task="multilabel" (per-label accuracy), and
``knn_accuracy`` (Renggli et al.'s train/test protocol), against brute-force float64 oracles written
here from SCORES.md. The tie rule is checked by enumerating every way of filling the boundary slots
(itertools.combinations), independently of the library's closed forms. Integer-valued features make
float32 and float64 distances equal, so both sides see the same tie groups."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsClassifier

import transferlab as tl


def _neighbour_draws(d: np.ndarray, k: int, ties: str):
    """Every equally likely k-set of candidates (distances ``d``, +inf = excluded) under the tie rule."""
    order = np.lexsort((np.arange(d.size), d))
    if ties == "lowest_index":
        return [order[:k]]
    T = d[order[k - 1]]
    closer = list(order[d[order] < T])
    group = list(np.flatnonzero(d == T))
    return [np.array(closer + list(c)) for c in itertools.combinations(group, k - len(closer))]


def _dists(Xq, X, loo):
    D = ((Xq[:, None, :].astype(np.float64) - X[None, :, :]) ** 2).sum(axis=2)
    if loo:
        np.fill_diagonal(D, np.inf)
    return D


def oracle_regression(X, Y, k, ties="expected", Xq=None, Yq=None):
    loo = Xq is None
    Xq, Yq = (X, Y) if loo else (Xq, Yq)
    D = _dists(Xq, X, loo)
    pred = np.array([np.mean([Y[s].mean(axis=0) for s in _neighbour_draws(D[i], k, ties)], axis=0)
                     for i in range(len(Xq))])
    return r2_score(Yq, pred)  # uniform average over target columns


def oracle_multilabel(X, L, k, ties="expected", Xq=None, Lq=None):
    loo = Xq is None
    Xq, Lq = (X, L) if loo else (Xq, Lq)
    D = _dists(Xq, X, loo)
    credit = []
    for i in range(len(Xq)):
        draws = _neighbour_draws(D[i], k, ties)
        for lab in range(L.shape[1]):
            c = []
            for s in draws:
                pos = L[s, lab].sum()
                c.append(0.5 if 2 * pos == k else float((2 * pos > k) == (Lq[i, lab] == 1)))
            credit.append(np.mean(c))
    return float(np.mean(credit))


def oracle_classification(X, y, Xq, yq, k, ties="expected"):
    """Train/test: mean over draws of [vote == y]; vote = most votes, smaller summed distance, smaller label."""
    D = _dists(Xq, X, False)
    out = []
    for i in range(len(Xq)):
        c = []
        for s in _neighbour_draws(D[i], k, ties):
            labs = y[s]
            best = min(set(labs.tolist()), key=lambda a: (-(labs == a).sum(), D[i][s][labs == a].sum(), a))
            c.append(float(best == yq[i]))
        out.append(np.mean(c))
    return float(np.mean(out))


@pytest.fixture(scope="module")
def tied():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, size=(70, 3)).astype(np.float32)  # 27 distinct points: duplicates and equal distances
    Y = X @ rng.normal(size=(3, 2)) + rng.normal(size=(70, 2))
    L = (Y + 0.3 * rng.normal(size=Y.shape) > 0).astype(np.int64)
    return X, Y, L


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("ties", ["expected", "lowest_index"])
def test_regression_equals_brute_force_r2_including_ties(tied, k, ties):
    X, Y, _ = tied
    want = oracle_regression(X, Y, k, ties)
    for kw in ({"device": "cpu"}, {"device": "reference"}, {"max_memory": "1MB"}):
        assert tl.knn_loo(X, Y, task="regression", k=k, ties=ties, **kw) == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert tl.knn_loo(X, Y[:, 0], task="regression", k=k, ties=ties) == pytest.approx(
        oracle_regression(X, Y[:, :1], k, ties), rel=1e-9)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_multilabel_equals_hand_oracle_including_ties(tied, k):
    X, _, L = tied
    want = oracle_multilabel(X, L, k)
    assert tl.knn_loo(X, L, task="multilabel", k=k) == pytest.approx(want, rel=1e-12)
    assert tl.knn_loo(X, L, task="multilabel", k=k, device="reference") == pytest.approx(want, rel=1e-12)
    assert tl.knn_loo(X, L, task="multilabel", k=k, max_memory="1MB") == pytest.approx(want, rel=1e-12)


def test_multilabel_by_hand_a_vote_at_half_counts_half():
    # Four points on a line; k=2. Row 0's nearest others are rows 1 (d=1) and 2 (d=4): labels (1, 0) -> a tied
    # vote, credit 1/2 whatever its own label. Row 3 (x=10): nearest 2 (d=36), 1 (d=81): (0, 0) -> predicts 0.
    X = np.array([[0.0], [1.0], [2.0], [10.0]])
    L = np.array([[1], [1], [0], [0]])
    # row 0: (1:1, 2:0) -> 1/2; row 1: 0 (d=1) and 2 (d=1), labels (1, 0) -> 1/2; row 2: 1 (d=1), 0 (d=4) ->
    # (1, 1) predicts 1, truth 0 -> 0; row 3: (0, 1) from rows 2, 1 -> 1/2.
    assert tl.knn_loo(X, L, task="multilabel", k=2) == pytest.approx((0.5 + 0.5 + 0.0 + 0.5) / 4)


def test_regression_queries_subset_and_cosine(tied):
    X, Y, _ = tied
    # cosine on continuous rows (scaled copies of integer rows tie in float64 but not in float32 after normalising)
    Xc = X + np.random.default_rng(5).normal(size=X.shape).astype(np.float32)
    want = tl.knn_loo(Xc, Y, task="regression", metric="cosine", k=3, device="reference")
    assert tl.knn_loo(Xc, Y, task="regression", metric="cosine", k=3) == pytest.approx(want, rel=1e-6)
    rows = np.arange(0, 70, 3)
    D = _dists(X, X, True)[rows]
    pred = np.array([np.mean([Y[s].mean(axis=0) for s in _neighbour_draws(D[r], 2, "expected")], axis=0)
                     for r in range(rows.size)])
    got = tl.knn_loo(X, Y, task="regression", k=2, queries=rows)
    assert got == pytest.approx(r2_score(Y[rows], pred), rel=1e-9)


def test_regression_inputs_untouched_and_bad_inputs(tied):
    X, Y, L = tied
    X0, Y0 = X.copy(), Y.copy()
    tl.knn_loo(X, Y, task="regression", k=2)
    assert np.array_equal(X, X0) and np.array_equal(Y, Y0)
    with pytest.raises(ValueError, match="constant target"):
        tl.knn_loo(X, np.ones(70), task="regression")
    with pytest.raises(ValueError, match=r"k must be in \[1, n_samples-1\]"):
        tl.knn_loo(X[:3], Y[:3], task="regression", k=3)
    with pytest.raises(ValueError, match="return_details=True is for task='classification'"):
        tl.knn_loo(X, Y, task="regression", return_details=True)


# ---------------------------------------------------------------------------- knn_accuracy


def test_knn_accuracy_equals_sklearn_without_ties():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 10)).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.7 * rng.normal(size=400), [-0.5, 0.5])
    Xtr, ytr, Xte, yte = X[:250], y[:250], X[250:], y[250:]
    want = KNeighborsClassifier(n_neighbors=1, algorithm="brute").fit(Xtr, ytr).score(Xte, yte)
    assert 0.4 < want < 0.95  # neither trivial nor hopeless
    assert tl.knn_accuracy(Xtr, ytr, Xte, yte) == pytest.approx(want, abs=1e-12)
    assert tl.knn_accuracy(Xtr, ytr, Xte, yte, ties="lowest_index") == pytest.approx(want, abs=1e-12)
    # string labels, and a test class never seen in training is simply never predicted
    names = np.array(["a", "b", "c", "z"])
    yte2 = yte.copy()
    yte2[:5] = 3
    assert tl.knn_accuracy(Xtr, names[ytr], Xte, names[yte2]) == pytest.approx(
        KNeighborsClassifier(n_neighbors=1, algorithm="brute").fit(Xtr, ytr).predict(Xte).__eq__(yte2).mean())


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("ties", ["expected", "lowest_index"])
def test_knn_accuracy_tie_rule_expectation(tied, k, ties):
    X, Y, L = tied
    y = np.argmax(Y, axis=1) + 2 * L[:, 0]
    Xtr, Xte = X[:45], X[45:]
    want = oracle_classification(Xtr, y[:45], Xte, y[45:], k, ties)
    assert tl.knn_accuracy(Xtr, y[:45], Xte, y[45:], k=k, ties=ties) == pytest.approx(want, rel=1e-12)
    want_r = oracle_regression(Xtr, Y[:45], k, ties, Xq=Xte, Yq=Y[45:])
    assert tl.knn_accuracy(Xtr, Y[:45], Xte, Y[45:], k=k, ties=ties, task="regression") == pytest.approx(want_r,
                                                                                                            rel=1e-9)
    want_m = oracle_multilabel(Xtr, L[:45], k, ties, Xq=Xte, Lq=L[45:])
    assert tl.knn_accuracy(Xtr, L[:45], Xte, L[45:], k=k, ties=ties, task="multilabel") == pytest.approx(want_m,
                                                                                                           rel=1e-12)


def test_knn_accuracy_bad_inputs():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(20, 3))
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match="n_features=3 but test_features have n_features=4"):
        tl.knn_accuracy(X, y, rng.normal(size=(5, 4)), y[:5])
    with pytest.raises(ValueError, match="test_labels has length 4"):
        tl.knn_accuracy(X, y, X[:5], y[:4])
    with pytest.raises(ValueError, match=r"k must be in \[1, n_train\]"):
        tl.knn_accuracy(X, y, X[:5], y[:5], k=21)
    with pytest.raises(ValueError, match="does not support task='regression'|task must be one of"):
        tl.knn_accuracy(X, y, X[:5], y[:5], task="ordinal")


# ---------------------------------------------------------------------------- the CUDA path


def test_cuda_lists_are_kept_when_the_cpu_rescan_agrees_and_replaced_when_not(tied):
    """The CPU-side logic of the CUDA path (no GPU needed): another kernel's lists are kept when the CPU
    rescan finds every tied row they count, and replaced by the CPU kernel's when a boundary group differs
    (as a GPU distance differing in its last bit would make it)."""
    from transferlab import kernels
    from transferlab.core.arrays import as_matrix
    from transferlab.scores.knn.one_shot import consistent_lists

    X, _, _ = tied
    host = as_matrix(X)
    idx, dist, tc, _ = kernels.cpu_module().knn_loo(host.data, None, 2, False, 1)
    same = consistent_lists(host, 2, "expected", idx, dist, tc)
    assert all(a is b for a, b in zip(same, (idx, dist, tc)))  # agreed: the given lists, untouched
    amb = np.flatnonzero(tc > np.sum(dist == dist[:, -1:], axis=1))
    assert amb.size  # the fixture has boundary groups larger than the slots
    off = tc.copy()
    off[amb[0]] += 1  # a group the rescan cannot confirm
    fixed = consistent_lists(host, 2, "expected", idx, dist, off)
    assert fixed[2] is not off and np.array_equal(fixed[2], tc) and np.array_equal(fixed[0], idx)


@pytest.mark.cuda
@pytest.mark.parametrize("task", ["regression", "multilabel"])
def test_cuda_equals_cpu(tied, task):
    X, Y, L = tied
    T = Y if task == "regression" else L
    for k in (1, 3):
        assert tl.knn_loo(X, T, task=task, k=k, device="cuda") == pytest.approx(
            tl.knn_loo(X, T, task=task, k=k, device="cpu"), rel=1e-9)
    rng = np.random.default_rng(7)
    Xc = rng.normal(size=(500, 32)).astype(np.float32)
    Yc = Xc[:, :2] @ rng.normal(size=(2, 2)) if task == "regression" else (Xc[:, :3] > 0).astype(int)
    assert tl.knn_loo(Xc, Yc, task=task, k=5, device="cuda") == pytest.approx(
        tl.knn_loo(Xc, Yc, task=task, k=5, device="cpu"), rel=1e-6)
    assert tl.logme(Xc, Yc, task=task, device="cuda") == pytest.approx(tl.logme(Xc, Yc, task=task), rel=1e-6)
