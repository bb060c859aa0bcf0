"""Float64 oracle of the linear-probe accuracy, written from SCORES.md ("Linear probe accuracy") and
the definition in ``transferlab.scores.linear_probe``'s docstring.

Independent of the fast path where it can be: the split is a plain loop over rows (content keys
hashed with Python ints); the "lbfgs" objective (scikit-learn's L2 multinomial logistic regression,
divided by n) is minimised with a *different* solver, scipy's trust-region Newton-CG (``trust-ncg``) with exact Hessian-vector products,
to a gradient norm of ``gtol``; "renggli" SGD is one learning rate at a time with an explicit one-hot
matrix and minibatch orders drawn epoch by epoch.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

LRS = (0.1, 0.01)
STEPS = 2500
BATCH = 512
RUNS = 5


def _mix64(h: int) -> int:
    """splitmix64's finaliser on a Python int (mod 2^64)."""
    mask = (1 << 64) - 1
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & mask
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & mask
    return h ^ (h >> 31)


def row_keys(X: np.ndarray, seed: int):
    """Per row, the two keys ``mix64(sum_j bits(x_j + 0.0) * a_kj mod 2^64)``, with Python ints."""
    d = X.shape[1]
    a = np.random.default_rng(seed).integers(0, 2**64, size=(2, d), dtype=np.uint64) | np.uint64(1)
    keys = []
    for row in np.asarray(X, dtype=np.float64):
        bits = [int(np.float64(v + 0.0).view(np.uint64)) for v in row]
        keys.append(tuple(_mix64(sum(bj * int(a[k, j]) for j, bj in enumerate(bits)) % (1 << 64))
                          for k in range(2)))
    return keys


def split(X: np.ndarray, y: np.ndarray, n_classes: int, val_fraction: float,
          seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """(train_index, val_index) in canonical order: rows sorted by (key 0, key 1, class); of each
    class the first ``clip(floor(f * n_c + 1/2), 1, n_c - 1)`` rows met in that order go to
    validation; single-sample classes go to train."""
    keys = row_keys(X, seed)
    canonical = sorted(range(y.shape[0]), key=lambda i: (keys[i][0], keys[i][1], int(y[i])))
    quota = {}
    for c in range(n_classes):
        n_c = int(np.sum(y == c))
        quota[c] = 0 if n_c < 2 else min(max(int(math.floor(val_fraction * n_c + 0.5)), 1), n_c - 1)
    train, val = [], []
    for i in canonical:
        c = int(y[i])
        if quota[c] > 0:
            val.append(i)
            quota[c] -= 1
        else:
            train.append(i)
    return np.asarray(train, dtype=np.int64), np.asarray(val, dtype=np.int64)


def folds(X: np.ndarray, y: np.ndarray, n_classes: int, k: int, seed: int) -> np.ndarray:
    """Fold of every row for ``cv=k``: walk the classes in ascending code, each class's rows in canonical order,
    dealing folds 0..k-1 in turn (a plain loop; one counter over all rows); -1 for the rows of single-sample
    classes (never validated; they still advance the counter)."""
    keys = row_keys(X, seed)
    canonical = sorted(range(y.shape[0]), key=lambda i: (keys[i][0], keys[i][1], int(y[i])))
    out = np.full(y.shape[0], -1, dtype=np.int64)
    dealt = 0
    for c in range(n_classes):
        rows = [i for i in canonical if int(y[i]) == c]
        for i in rows:
            if len(rows) >= 2:
                out[i] = dealt % k
            dealt += 1
    return out


def cross_validated(X: np.ndarray, y: np.ndarray, n_classes: int, k: int, *, seed: int = 0, C: float = 1.0,
                    standardize: bool = True) -> Tuple[float, np.ndarray, np.ndarray]:
    """(score, correct per validated row in ascending row order, folds) of the "lbfgs" probe under ``cv=k``:
    for each fold, the oracle fit on every other row predicts the fold's rows."""
    f = folds(X, y, n_classes, k, seed)
    right = np.zeros(y.shape[0])
    for j in range(k):
        tr, va = np.flatnonzero(f != j), np.flatnonzero(f == j)
        right[va] = fit_and_score(X, y, n_classes, tr, va, seed=seed, C=C, standardize=standardize)["correct"]
    val = f >= 0
    return float(right[val].mean()), right[val], f


def standardise(Xtr: np.ndarray, Xva: np.ndarray, on: bool):
    if not on:
        d = Xtr.shape[1]
        return Xtr, Xva, np.zeros(d), np.ones(d)
    mean = Xtr.mean(axis=0)
    std = Xtr.std(axis=0)
    scale = np.where(std == 0, 1.0, std)
    return (Xtr - mean) / scale, (Xva - mean) / scale, mean, scale


def _softmax(Z: np.ndarray) -> np.ndarray:
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def objective(theta: np.ndarray, X: np.ndarray, Y: np.ndarray, C: float) -> Tuple[float, np.ndarray]:
    """``(1/n) sum_i CE_i + ||W||^2 / (2 C n)`` and its gradient; theta = [W.ravel(), b]."""
    n, d = X.shape
    k = Y.shape[1]
    W, b = theta[: k * d].reshape(k, d), theta[k * d :]
    Z = X @ W.T + b
    zmax = Z.max(axis=1, keepdims=True)
    lse = zmax[:, 0] + np.log(np.exp(Z - zmax).sum(axis=1))
    f = np.sum(lse - np.sum(Z * Y, axis=1)) / n + np.sum(W * W) / (2 * C * n)
    G = (_softmax(Z) - Y) / n
    return f, np.concatenate([(G.T @ X + W / (C * n)).ravel(), G.sum(axis=0)])


def hessp(theta: np.ndarray, v: np.ndarray, X: np.ndarray, Y: np.ndarray, C: float) -> np.ndarray:
    """Exact Hessian-vector product of :func:`objective`."""
    n, d = X.shape
    k = Y.shape[1]
    W, b = theta[: k * d].reshape(k, d), theta[k * d :]
    V, vb = v[: k * d].reshape(k, d), v[k * d :]
    P = _softmax(X @ W.T + b)
    U = X @ V.T + vb  # directional derivative of the logits
    R = P * U - P * np.sum(P * U, axis=1, keepdims=True)
    return np.concatenate([(R.T @ X / n + V / (C * n)).ravel(), R.sum(axis=0) / n])


def fit_lbfgs_objective(Xtr, ytr, n_classes: int, C: float, gtol: float = 1e-10):
    """The minimiser (W, b) of the "lbfgs" objective, by trust-region Newton-CG."""
    from scipy.optimize import minimize

    d = Xtr.shape[1]
    Y = np.eye(n_classes)[ytr]
    res = minimize(objective, np.zeros(n_classes * d + n_classes), args=(Xtr, Y, C), jac=True, hessp=hessp,
                   method="trust-ncg", options={"gtol": gtol, "maxiter": 10000})
    W, b = res.x[: n_classes * d].reshape(n_classes, d), res.x[n_classes * d :]
    return W, b, float(res.fun), bool(res.success)


def accuracy(X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.argmax(X @ W.T + b, axis=1) == y))


def sgd_run(Xtr, ytr, n_classes: int, lr: float, seed: int, run: int, steps=None, batch: int = BATCH):
    """One run of plain minibatch SGD from zero: batches cut from consecutive epoch permutations."""
    steps = STEPS if steps is None else steps
    n, d = Xtr.shape
    batch = min(batch, n)
    rng = np.random.default_rng([seed, run])
    Y = np.eye(n_classes)[ytr]
    W, b = np.zeros((n_classes, d)), np.zeros(n_classes)
    stream = np.zeros(0, dtype=np.int64)
    for _ in range(steps):
        while stream.size < batch:
            stream = np.concatenate([stream, rng.permutation(n)])
        idx, stream = stream[:batch], stream[batch:]
        X = Xtr[idx]
        G = _softmax(X @ W.T + b) - Y[idx]
        W = W - lr * (G.T @ X) / batch
        b = b - lr * G.sum(axis=0) / batch
    return W, b


def fit_and_score(X: np.ndarray, y: np.ndarray, n_classes: int, train_idx, val_idx, *, protocol: str = "lbfgs",
                  seed: int = 0, C: float = 1.0, standardize: bool = True) -> dict:
    """The linear-probe accuracy of already-validated float64 ``X`` and codes ``y`` on a given split."""
    Xtr, Xva, mean, scale = standardise(X[train_idx], X[val_idx], standardize)
    ytr, yva = y[train_idx], y[val_idx]
    Y = np.eye(n_classes)[ytr]
    if protocol == "lbfgs":
        W, b, f, ok = fit_lbfgs_objective(Xtr, ytr, n_classes, C)
        right = (np.argmax(Xva @ W.T + b, axis=1) == yva).astype(np.float64)
        return {"score": float(right.mean()), "coef": W, "intercept": b, "mean": mean, "scale": scale,
                "loss": f, "n_iter": 0, "converged": ok, "runs": None, "correct": right}
    steps = STEPS
    accs = np.zeros((RUNS, len(LRS)))
    chosen = []
    for r in range(RUNS):
        fits = [sgd_run(Xtr, ytr, n_classes, lr, seed, r) for lr in LRS]
        accs[r] = [accuracy(Xva, yva, W, b) for W, b in fits]
        chosen.append(fits[int(np.argmax(accs[r]))])
    per_run = accs.max(axis=1)
    med = float(np.median(per_run))
    W, b = chosen[int(np.flatnonzero(per_run == med)[0])]
    f, _ = objective(np.concatenate([W.ravel(), b]), Xtr, Y, math.inf)
    return {"score": med, "coef": W, "intercept": b, "mean": mean, "scale": scale, "loss": float(f),
            "n_iter": steps, "converged": True, "runs": accs}
