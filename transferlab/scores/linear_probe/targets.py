"""The linear probe beyond single-label classes: ridge regression (held-out R^2) and one-vs-rest logistic
regression (mean per-label accuracy), on the classifier's split.

Contract (SCORES.md, "Targets beyond single-label classification"). Regression with ``cv=K`` (default):
K-fold cross-validated R^2 over every row (``round_robin_folds``: the rows in the classifier's canonical
content-key order dealt to the folds in turn, one stratum since there are no classes). Otherwise (and for
multilabel) the rows are split as the classifier splits them (``split_rows``: the seeded content-key split of
``linear_probe``, all rows one stratum; or the caller's ``split``). Regression: ridge on the features standardised with the
train split's mean and (biased) std (``standardize=False``: only centred), intercept unpenalised, i.e.
scikit-learn's ``Ridge(alpha)`` on ``StandardScaler``-ed features; ``alpha=None`` picks it from
:data:`ALPHAS` by ``cv``-fold cross-validation on the train split (``cv_folds``: contiguous folds of the
train rows in canonical order, each fold standardised with its own training part, mean R^2, ties to the
larger alpha); score = R^2 on the held-out split (uniform average over target columns). Multilabel: each
indicator column is a binary ``linear_probe`` (with ``split``, on that split for every label: a column
constant on its train rows predicts that constant); score = the mean per-label validation accuracy. Float64 on the host. Inputs are
read, never written.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import numpy as np

from transferlab.core.arrays import Matrix

__all__ = ["ALPHAS", "split_rows", "cv_folds", "round_robin_folds", "ridge_fit", "ridge_r2", "choose_alpha",
           "ridge_probe", "ridge_cross_validated", "canonical_rows", "multilabel_probe"]

#: The ridge strengths the cross-validation chooses from (scikit-learn's ``alpha`` scale).
ALPHAS = tuple(float(a) for a in 10.0 ** np.arange(-3, 5))


def split_rows(keys: np.ndarray, val_fraction: float, stratified_split: Callable) -> Tuple[np.ndarray, np.ndarray]:
    """(train, val) rows: the classifier's seeded split with every row in one stratum."""
    return stratified_split(keys, np.zeros(keys.shape[0], dtype=np.int64), 1, val_fraction)


def cv_folds(n: int, cv: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """``cv`` contiguous folds of positions 0..n-1 (scikit-learn's ``KFold(cv)`` without shuffling):
    (fit positions, held-out positions) per fold."""
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise ValueError(f"cv must be an int >= 2, got {cv!r}")
    if cv > n:
        raise ValueError(f"cv={cv} folds need at least {cv} training rows, got {n}")
    sizes = np.full(cv, n // cv, dtype=np.int64)
    sizes[: n % cv] += 1
    edges = np.concatenate([[0], np.cumsum(sizes)])
    pos = np.arange(n)
    return [(np.concatenate([pos[: edges[f]], pos[edges[f + 1]:]]), pos[edges[f] : edges[f + 1]]) for f in range(cv)]


def _standardiser(X: np.ndarray, standardize: bool) -> Tuple[np.ndarray, np.ndarray]:
    mean = X.mean(axis=0)
    if not standardize:
        return mean, np.ones_like(mean)
    std = X.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def ridge_fit(X: np.ndarray, Y: np.ndarray, alpha: float, standardize: bool):
    """(mean, scale, W (D, T), intercept (T,)): ``min |Y - X'W - b|^2 + alpha |W|^2`` on X' = (X - mean)/scale."""
    mean, scale = _standardiser(X, standardize)
    Z = (X - mean) / scale
    ym = Y.mean(axis=0)
    A = Z.T @ Z
    A[np.diag_indices_from(A)] += alpha
    W = np.linalg.solve(A, Z.T @ (Y - ym))
    return mean, scale, W, ym


def ridge_r2(fit, X: np.ndarray, Y: np.ndarray) -> float:
    """R^2 of a :func:`ridge_fit` on (X, Y), averaged over target columns; a constant column raises."""
    mean, scale, W, b = fit
    pred = ((X - mean) / scale) @ W + b
    sst = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    if np.any(sst == 0):
        raise ValueError("R^2 is undefined: a target column is constant on the held-out rows; use more rows "
                         "or another split")
    return float(np.mean(1.0 - ((Y - pred) ** 2).sum(axis=0) / sst))


def choose_alpha(X: np.ndarray, Y: np.ndarray, cv: int, standardize: bool, alphas=ALPHAS) -> float:
    """The alpha of ``alphas`` with the best mean R^2 over :func:`cv_folds` (ties: the larger alpha)."""
    folds = cv_folds(X.shape[0], cv)
    best, best_a = -np.inf, None
    for a in sorted(alphas):
        score = np.mean([ridge_r2(ridge_fit(X[f], Y[f], a, standardize), X[h], Y[h]) for f, h in folds])
        if score >= best:
            best, best_a = score, a
    return float(best_a)


#: Folds of the alpha search when ``cv=None`` (one validation split, no fold count given).
DEFAULT_ALPHA_FOLDS = 5


def ridge_probe(m: Matrix, Y: np.ndarray, train: np.ndarray, val: np.ndarray, *, alpha: Optional[float],
                cv: Optional[int], standardize: bool) -> float:
    """Held-out R^2 of ridge on the train rows (alpha given, or chosen by :func:`choose_alpha` with ``cv``
    folds, :data:`DEFAULT_ALPHA_FOLDS` when ``cv`` is None)."""
    Xtr, Xva = m.take(train).to_float64_host(), m.take(val).to_float64_host()
    Ytr, Yva = Y[train], Y[val]
    if alpha is None:
        alpha = choose_alpha(Xtr, Ytr, DEFAULT_ALPHA_FOLDS if cv is None else cv, standardize)
    return ridge_r2(ridge_fit(Xtr, Ytr, float(alpha), standardize), Xva, Yva)


def canonical_rows(keys: np.ndarray) -> np.ndarray:
    """Rows in canonical order (ascending content keys, as the classifier's split orders them)."""
    return np.lexsort((keys[:, 1], keys[:, 0]))


def round_robin_folds(order: np.ndarray, cv: int) -> np.ndarray:
    """(N,) fold of every row: the rows in canonical ``order`` dealt to folds 0..cv-1 in turn (the
    classifier's round-robin folds with a single stratum)."""
    n = order.shape[0]
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise ValueError(f"cv must be an int >= 2, got {cv!r}")
    if cv > n:
        raise ValueError(f"cv={cv} folds need at least {cv} rows, got n_samples={n}")
    folds = np.empty(n, dtype=np.int64)
    folds[order] = np.arange(n) % cv
    return folds


def ridge_cross_validated(m: Matrix, Y: np.ndarray, order: np.ndarray, cv: int, *, alpha: Optional[float],
                          standardize: bool) -> float:
    """Cross-validated R^2: every row predicted once by ridge fitted on the other folds
    (:func:`round_robin_folds`; each fold's alpha given, or chosen by :func:`choose_alpha` with ``cv`` folds
    of its training rows in canonical order), then 1 - SSE/SST over all rows (scikit-learn
    ``cross_val_predict`` + ``r2_score``). Permuting the rows changes nothing (canonical order)."""
    X = m.to_float64_host()
    folds = round_robin_folds(order, cv)
    pred = np.empty_like(Y)
    for f in range(cv):
        held = np.flatnonzero(folds == f)
        fit_rows = order[folds[order] != f]  # canonical order: it fixes the inner folds of the alpha search
        a = alpha if alpha is not None else choose_alpha(X[fit_rows], Y[fit_rows], cv, standardize)
        mean, scale, W, b = ridge_fit(X[fit_rows], Y[fit_rows], float(a), standardize)
        pred[held] = ((X[held] - mean) / scale) @ W + b
    sst = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    if np.any(sst == 0):
        raise ValueError("R^2 is undefined: a target column is constant")
    return float(np.mean(1.0 - ((Y - pred) ** 2).sum(axis=0) / sst))


def multilabel_probe(m: Matrix, L: np.ndarray, train: np.ndarray, val: np.ndarray,
                     probe: Callable[[Matrix, np.ndarray, Tuple[np.ndarray, np.ndarray]], float]) -> float:
    """Mean over indicator columns of the validation accuracy of a binary probe (``probe(m, column,
    split)``); a column constant on the train rows predicts that constant."""
    accs = []
    for j in range(L.shape[1]):
        col = L[:, j]
        if np.unique(col[train]).size < 2:
            accs.append(float(np.mean(col[val] == col[train][0])))
        else:
            accs.append(float(probe(m, col.astype(np.int64), (train, val))))
    return float(np.mean(accs))
