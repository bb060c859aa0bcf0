"""Regression / multilabel targets and the train/test kNN protocol, beside scikit-learn and numpy baselines.

    python bench/bench_tasks.py                 # N = 5000, D = 256 (TL_BENCH_TASKS_N, TL_BENCH_TASKS_D)

Each pair is checked for equal values first, then timed in the same run (minimum of TL_BENCH_ROUNDS, default 3):
* knn_loo(task="regression", k=10) vs scikit-learn: NearestNeighbors(brute).kneighbors(k+1) on the same rows in
  float64, self dropped, mean target of the 10 others, r2_score (continuous data: no exact ties; float32 near-ties
  may swap a 10th neighbour, so the values agree to 1e-4);
* knn_accuracy (1-NN, train/test) vs KNeighborsClassifier(n_neighbors=1, algorithm="brute").score;
* logme(task="regression") vs the authors' regression path in float64 numpy (truncated SVD of f^T f, one fixed
  point per target column), T = 4 target columns.
Printed: seconds of each and the ratio baseline / transferlab (> 1: transferlab is faster).

Measured 2026-12-03 on the shared 2-core development machine (other jobs running; ratios from one run):
| what | baseline | value | transferlab s | baseline s | baseline / transferlab |
|---|---|---:|---:|---:|---:|
| knn_loo regression k=10 | sklearn NearestNeighbors brute | 0.148923 | 0.2000 | 0.9090 | 4.55 |
| knn_accuracy 1-NN | sklearn KNeighborsClassifier brute | 0.3148 | 0.1279 | 0.3473 | 2.72 |
| logme regression T=4 | authors' numpy path | -0.830506 | 0.2795 | 0.4728 | 1.69 |
"""
from __future__ import annotations

import os
import time

import numpy as np
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

import transferlab as tl

N = int(os.environ.get("TL_BENCH_TASKS_N", "5000"))
D = int(os.environ.get("TL_BENCH_TASKS_D", "256"))
ROUNDS = int(os.environ.get("TL_BENCH_ROUNDS", "3"))


def _best(fn):
    out, best = None, np.inf
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def _sk_knn_r2(X, Y, k):
    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(X)
    idx = nn.kneighbors(X, return_distance=False)
    others = np.array([[j for j in row if j != i][:k] for i, row in enumerate(idx)])
    return r2_score(Y, Y[others].mean(axis=1))


def _authors_logme_regression(f, y):
    f = f.astype(np.float64)
    n, d = f.shape
    _, s, vh = np.linalg.svd(f.T @ f)
    s = np.sqrt(s)
    k = int(np.sum(s > 1e-10))
    u = (f @ vh.T)[:, :k] / s[:k]
    sigma = s[:k] ** 2
    out = []
    for j in range(y.shape[1]):
        x2 = (u.T @ y[:, j]) ** 2
        res_x2 = y[:, j] @ y[:, j] - x2.sum()
        alpha = beta = 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = (sigma / (sigma + t)).sum()
            m2 = (sigma * x2 / (t + sigma) ** 2).sum()
            res2 = (x2 / (1 + sigma / t) ** 2).sum() + res_x2
            alpha, beta = gamma / (m2 + 1e-5), (n - gamma) / (res2 + 1e-5)
            ev = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - 0.5 * np.log(alpha + beta * sigma).sum()
                  - beta / 2 * res2 - alpha / 2 * m2 - n / 2 * np.log(2 * np.pi)) / n
            if abs(alpha / beta - t) / t <= 1e-3:
                break
        out.append(ev)
    return float(np.mean(out))


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D)).astype(np.float32)
    W = rng.normal(size=(D, 4))
    Y = X.astype(np.float64) @ W / np.sqrt(D) + 0.5 * rng.normal(size=(N, 4))
    y = np.argmax(Y, axis=1)
    rows = []

    ours, t_ours = _best(lambda: tl.knn_loo(X, Y, task="regression", k=10))
    base, t_base = _best(lambda: _sk_knn_r2(X.astype(np.float64), Y, 10))  # float64: no float32 near-tie swaps
    # float32 tiles vs float64: a near-tie (relative 1e-7) may swap one 10th neighbour (N = 5000: one row)
    assert abs(ours - base) <= 1e-4, (ours, base)
    rows.append(("knn_loo regression k=10", "sklearn NearestNeighbors brute", ours, t_ours, t_base))

    half = N // 2
    ours, t_ours = _best(lambda: tl.knn_accuracy(X[:half], y[:half], X[half:], y[half:]))
    clf = lambda: KNeighborsClassifier(n_neighbors=1, algorithm="brute").fit(X[:half], y[:half]).score(X[half:], y[half:])  # noqa: E731
    base, t_base = _best(clf)
    assert abs(ours - base) <= 1e-12, (ours, base)
    rows.append(("knn_accuracy 1-NN", "sklearn KNeighborsClassifier brute", ours, t_ours, t_base))

    ours, t_ours = _best(lambda: tl.logme(X, Y, task="regression"))
    base, t_base = _best(lambda: _authors_logme_regression(X, Y))
    assert abs(ours - base) <= 1e-6 * abs(base), (ours, base)
    rows.append(("logme regression T=4", "authors' numpy path", ours, t_ours, t_base))

    print(f"N={N} D={D} rounds={ROUNDS} cpus={os.cpu_count()}")
    print("| what | baseline | value | transferlab s | baseline s | baseline / transferlab |")
    print("|---|---|---:|---:|---:|---:|")
    for what, bl, v, a, b in rows:
        print(f"| {what} | {bl} | {v:.6g} | {a:.4f} | {b:.4f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
