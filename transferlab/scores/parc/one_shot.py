"""PARC: pairwise annotation representation comparison (Bolya et al. 2021)."""
from __future__ import annotations

import warnings
from typing import Optional, Tuple

import numpy as np

from transferlab.core.types import Device, Features, MemoryBudget, NanPolicy, RowOrder, Targets, Task
from transferlab.core import blocks, cpu_threads
from transferlab.scores import _gram
from transferlab.core.arrays import Matrix
from transferlab.core.inputs import prepare
from transferlab.core.row_order import canonical_order, check_row_order
from transferlab.scores.registry import require_task

PCAS = ("randomized", "exact", None)
LABEL_RDMS = ("published", "exact")
#: label_rdm="published" builds the dense (probe x C) one-hot only up to this many classes; above it
#: the closed form (noise-free two-valued RDM_Y) keeps memory O(probe^2 + C), independent of C x N.
PUBLISHED_RDM_MAX_CLASSES = 1024


@blocks.checks_max_memory
def parc(
    features: Features,
    labels: Targets,
    *,
    pca: str = "randomized",
    n_dims: int = 32,
    probe_size: Optional[int] = 500,
    seed: int = 0,
    label_rdm: str = "published",
    device: Device = "auto",
    nan_policy: NanPolicy = "raise",
    max_memory: MemoryBudget = None,
    task: Task = "classification",
    row_order: RowOrder = "canonical",
) -> float:
    """PARC: Spearman correlation (x 100) of the feature and label dissimilarity matrices.

    Bolya et al. 2021, "Scalable Diverse Model Selection for Accessible Transfer Learning".

    Parameters
    ----------
    features : (N, D); labels : (N,).
    pca : "randomized" (default: scikit-learn ``PCA(n_dims, svd_solver="randomized",
        random_state=1919, iterated_power=1)`` on float32 features, which the published numbers
        come from), "exact" (one eigensolve of the centred Gram, float64; axis signs as
        scikit-learn's PCA sets them, which matters: the row correlations centre each row over
        the axes) or None (no reduction).
        No reduction either when D <= n_dims; n_dims is capped at the probe size.
    probe_size : PARC is O(N^2): above this many samples a probe set of ``probe_size`` rows is drawn
        without replacement with ``numpy.random.default_rng(seed)`` (sorted positions), as
        ``probe_indices`` does, from the rows in canonical order (below); None scores every row.
    label_rdm : "published" (default) builds RDM_Y exactly as the published code does,
        ``1 - np.corrcoef(onehot)`` over the probe rows (one-hot width = the number of classes of
        the full label set): its rounding noise (values like 1e-16 in place of 0 for some
        same-class pairs) breaks ties and moves the score (0.07 on 400 samples of 5 classes), and
        the published numbers include it. Only for C <= ``PUBLISHED_RDM_MAX_CLASSES`` (1024): with
        more classes the probe x C one-hot is never built and "published" computes what "exact"
        does (the closed form: 1 - corrcoef of one-hot rows is 0 within a class and
        1 + 1/(C - 1) across classes; the rounding noise, BLAS-dependent anyway, is absent).
        "exact": the noise-free two-valued RDM_Y, i.e. the
        Pearson correlation of the ranks of RDM_F with the different-class indicator (no one-hot,
        no N x N label matrix; platform-independent).
    device : "auto" | "cpu" | "cuda" (exact PCA on the GPU, the probe correlations on the host) | "reference"; nan_policy : "raise" | "omit".
    max_memory : host memory for the passes over the bank (bytes, or "2GB", "512MiB"; None = no
        budget): the canonical-order pass reads the bank in blocks of that size; the probe rows and
        their O(probe_size^2) matrices count as state. See docs/out_of_core.md.

    Definition
    ----------
    F = the reduced probe features, standardised per column (population std; constant columns
    only centred); ``RDM_F = 1 - corrcoef(rows of F)``, ``RDM_Y = 1 - corrcoef(rows of onehot(y))``;
    PARC = 100 x Spearman correlation (Pearson correlation of average ranks) of the strict upper
    triangles.

    ``task="regression"`` (labels = float targets (N,) or (N, T)): with T >= 2, RDM_Y = 1 - corrcoef of
    the target rows, as the paper defines it for regression (the rows in canonical order keyed by the
    sorted distinct target rows). A single target column has no row correlation (each row is one
    number): there RDM_Y = |y_i - y_j| (transferlab's choice, beyond the paper; only its ranks enter).
    ``label_rdm`` does not apply.

    Row order: the probe draw and the randomized PCA see the row order (the published score
    depends on it). Here the rows are first put in a canonical order (``core.row_order``: sorted by two
    fixed projections of their contents, then by label), so the score is a function of the rows'
    contents and the seed: permuting the rows gives bitwise the same value (BAD_INPUTS.md row 9). It
    equals the published pipeline fed the (probe) rows in that canonical order.
    ``row_order="given"``: no canonical order; the probe is drawn from, and the published pipeline run on,
    the rows in the order given, which reproduces the published implementation's number for that order
    (and so depends on it). Not for the streaming state (``PARCStream`` raises).
    """
    check_options(pca, label_rdm, n_dims)
    given = check_row_order(row_order) == "given"
    require_task("parc", task)
    m, lab, dev, _ = prepare(features, labels, nan_policy=nan_policy, device=device, max_memory=max_memory,
                          cost=lambda mm, lb: _memory_cost(mm, probe_size), what="parc", task=task)
    rows = probe_indices(m.n, probe_size, seed)
    if task == "regression":
        return _parc_regression(m, lab.values, rows, pca, n_dims, dev, given)
    codes = lab.codes
    order = None if given else canonical_order(m, codes)
    if order is not None:
        rows = order if rows is None else order[rows]
    if rows is not None:
        m = m.take(rows)
        codes = codes[rows]
    return score_probe(m, codes, lab.n_classes, pca, n_dims, label_rdm, dev)


def _parc_regression(m: Matrix, Y: np.ndarray, rows, pca, n_dims: int, dev: str, given: bool = False) -> float:
    """PARC with the regression label RDM ``1 - corrcoef(target rows)`` (same rows, order and PCA as the
    classification path: the canonical order's label key is the rank of each distinct target row)."""
    keys = np.unique(Y, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int32)
    order = None if given else canonical_order(m, keys)
    if order is not None:
        rows = order if rows is None else order[rows]
    if rows is not None:
        m, Y = m.take(rows), Y[rows]
    from scipy.stats import rankdata

    with cpu_threads.blas_single_threaded():
        F = reduce(m, pca, n_dims)
        corr = feature_correlations(F)
        iu = np.triu_indices(m.n, k=1)
        _warn_degenerate_rdm(corr[iu])
        if Y.shape[1] == 1:
            # One number per row has no row correlation: its dissimilarity is |y_i - y_j| (only ranks enter).
            rdm_y = np.abs(Y[:, 0][:, None] - Y[:, 0][None, :])
            return float(100.0 * _pearson(rankdata(1.0 - corr[iu]), rankdata(rdm_y[iu])))
        Yc = Y - Y.mean(axis=1, keepdims=True)
        norms = np.sqrt(np.einsum("ij,ij->i", Yc, Yc))
        if np.any(norms == 0):
            raise ValueError(f"parc with task='regression': {int(np.sum(norms == 0))} target row(s) are constant "
                             f"across the {Y.shape[1]} target columns (first: row {int(np.flatnonzero(norms == 0)[0])}); "
                             "their correlation with other rows is undefined")
        Yn = Yc / norms[:, None]
        # Exact ties stay exact (as for the features): with 2 columns every centred row is (a, -a), so every
        # correlation is +-1 and the label RDM is two-valued; rounding must not order those ties.
        corr_y = snap_perfect_correlations(np.clip(Yn @ Yn.T, -1.0, 1.0), Y.shape[1])
        share = float(np.mean(np.abs(corr_y[iu]) == 1.0))
        if share >= DEGENERATE_SHARE:
            warnings.warn(f"PARC: {100 * share:.0f}% of the probe's target-row pairs are perfectly correlated (2 target "
                          "columns, or duplicate rows), so the label RDM is mostly ties and the score says little",
                          UserWarning, stacklevel=4)
        rdm_y = 1.0 - corr_y
        return float(100.0 * _pearson(rankdata(1.0 - corr[iu]), rankdata(rdm_y[iu])))


def _memory_cost(m: Matrix, probe_size) -> Tuple[int, int]:
    """Budget model: a block row of the key pass (its stored bytes, a float64 copy, two products);
    state: 40 bytes per row (two keys, the order, the labels), the probe rows in float64 (four
    copies through the PCA) and eight (P, P) float64 matrices (correlations, ranks, triangles)."""
    p = m.n if probe_size is None or not isinstance(probe_size, (int, np.integer)) else min(int(probe_size), m.n)
    return m.data.dtype.itemsize * m.d + 24 * m.d, 40 * m.n + 32 * p * m.d + 64 * p * p


def check_options(pca, label_rdm, n_dims=32) -> None:
    if isinstance(n_dims, (bool, np.bool_)) or not isinstance(n_dims, (int, np.integer)):
        raise TypeError(f"n_dims must be a positive int, got {type(n_dims).__name__} {n_dims!r}")
    if n_dims < 1:
        raise ValueError(f"n_dims must be a positive int, got {n_dims}")
    if pca not in PCAS:
        raise ValueError(f"pca must be one of {PCAS}, got {pca!r}")
    if label_rdm not in LABEL_RDMS:
        raise ValueError(f"label_rdm must be one of {LABEL_RDMS}, got {label_rdm!r}")


def score_probe(m: Matrix, codes: np.ndarray, n_classes: int, pca, n_dims: int, label_rdm: str, dev: str) -> float:
    """PARC of the probe rows (in canonical order) and their codes among ``n_classes`` classes."""
    if np.unique(codes).size < 2:
        raise ValueError("the PARC probe set holds a single class; raise probe_size or change seed")
    # One BLAS thread: a threaded BLAS sums in an order that depends on its thread count, and PARC's
    # products are small (probe rows x reduced dims), so bitwise results across thread counts cost little.
    with cpu_threads.blas_single_threaded():
        return _parc_of_probe(m, codes, n_classes, pca, n_dims, label_rdm, dev)


def _parc_of_probe(m: Matrix, codes: np.ndarray, n_classes: int, pca, n_dims: int, label_rdm: str,
                   dev: str) -> float:
    F = reduce(m, pca, n_dims)
    corr = feature_correlations(F)
    _warn_degenerate_rdm(corr[np.triu_indices(m.n, k=1)])
    if dev == "reference":
        from transferlab.reference.parc import parc as oracle

        big = n_classes > PUBLISHED_RDM_MAX_CLASSES
        return oracle(F, codes, n_classes=n_classes, label_rdm="exact" if big else label_rdm)
    from scipy.stats import rankdata

    iu = np.triu_indices(m.n, k=1)
    rank_f = rankdata(1.0 - corr[iu])
    if label_rdm == "published" and n_classes <= PUBLISHED_RDM_MAX_CLASSES:
        onehot = np.eye(n_classes)[codes]
        rdm_y = rankdata((1.0 - np.corrcoef(onehot))[iu])
    else:
        rdm_y = (codes[:, None] != codes[None, :])[iu].astype(np.float64)
    return float(100.0 * _pearson(rank_f, rdm_y))


# Share of the probe's row pairs that are perfectly correlated (+1 or -1) above which PARC warns: most of the
# feature ranking is then one big tie (duplicate or collinear rows; with 2 feature dimensions every pair).
DEGENERATE_SHARE = 0.5


def _warn_degenerate_rdm(corr: np.ndarray) -> None:
    """Warn when the feature RDM is degenerate: with two columns every centred row is (a, -a), so every
    correlation is exactly +1 or -1; duplicate rows correlate exactly too. Before the snap of
    :func:`snap_perfect_correlations`, rounding noise decided those ties (the CPU and the float64 reference
    gave 3.11 and 2.47 on D = 2); now they tie exactly, and when they are most pairs the score says little."""
    share = float(np.mean(np.abs(corr) == 1.0)) if corr.size else 0.0
    if share >= DEGENERATE_SHARE:
        warnings.warn(f"PARC: {100 * share:.0f}% of the probe's row pairs are perfectly correlated (duplicate or "
                      "collinear rows, or 2 feature dimensions), so the feature RDM is mostly one tie and the score "
                      "is not meaningful here", UserWarning, stacklevel=6)


def feature_correlations(F: np.ndarray) -> np.ndarray:
    """The (n, n) row correlations of the standardised reduced features, ties kept exact.

    Duplicate rows make ties that exist in the data: row i and its copy i' correlate exactly with every
    other row j, and with each other at exactly 1. Computed pair by pair, the last bits of those equal
    values differ, and they decide the ranks PARC correlates (a bank with duplicates gave 51.68 on the
    CPU and 51.66 in the float64 reference). So when rows repeat, the correlations are computed once per
    distinct row (first occurrences, in order) and spread to the copies: equal values are bitwise equal.
    Banks without repeated rows take the plain path, bit for bit the published computation."""
    Z = standardise(F)
    _, first, inverse = np.unique(Z, axis=0, return_index=True, return_inverse=True)
    if first.size == Z.shape[0]:
        return snap_perfect_correlations(row_correlations(Z), F.shape[1])
    order = np.argsort(first, kind="stable")  # distinct rows in order of first occurrence
    rank_of = np.empty_like(order)
    rank_of[order] = np.arange(order.size)
    distinct = row_correlations(Z[first[order]])
    np.fill_diagonal(distinct, 1.0)  # a row and its copy
    where = rank_of[inverse.reshape(-1)]
    return snap_perfect_correlations(distinct[np.ix_(where, where)], F.shape[1])


def snap_perfect_correlations(corr: np.ndarray, n_dims: int) -> np.ndarray:
    """Correlations within rounding error of +1 or -1 set to exactly +1 / -1 (in place; ``corr`` is ours).

    Why: duplicate (or collinear) rows correlate exactly, but a dot product of unit rows of ``n_dims``
    values rounds to 1 - a few ulps, differently for each pair and each machine, and those last bits then
    decide the ranks PARC correlates (duplicate rows gave 3.11 on the CPU and 2.47 in the reference). Below
    ``8 * n_dims * eps`` (above the dot product's rounding error bound) a difference says nothing about
    the features: snapped, such pairs tie exactly and the score is a function of the data. Pairs further
    from +-1 are untouched, so banks without such rows give the published values bit for bit."""
    tol = 8.0 * max(int(n_dims), 1) * np.finfo(np.float64).eps
    corr[corr >= 1.0 - tol] = 1.0
    corr[corr <= -1.0 + tol] = -1.0
    return corr


def probe_indices(n: int, probe_size, seed):
    """Sorted probe rows (None when every row is scored)."""
    if probe_size is None or n <= probe_size:
        return None
    if isinstance(probe_size, bool) or not isinstance(probe_size, (int, np.integer)) or probe_size < 2:
        raise ValueError(f"probe_size must be an int >= 2 or None, got {probe_size!r}")
    return np.sort(np.random.default_rng(seed).choice(n, int(probe_size), replace=False))


def reduce(m: Matrix, pca, n_dims: int) -> np.ndarray:
    """The (n, k) float64 reduced features of the published pipeline."""
    k = min(int(n_dims), m.n)
    if pca is None or m.d <= n_dims:
        return m.to_float64_host()
    if pca == "exact":
        mean, comps, _ = _gram.pca(m, n_components=k)
        return _gram.project(m, comps, -(comps @ mean))
    from sklearn.decomposition import PCA

    X32 = m.to_float64_host().astype(np.float32)
    # Constant features make scikit-learn divide 0 by 0 in the explained-variance ratio, which PARC does
    # not use; the constant rows are then refused with PARC's own ValueError.
    with np.errstate(invalid="ignore", divide="ignore"):
        out = PCA(n_components=k, svd_solver="randomized", random_state=1919, iterated_power=1).fit_transform(X32)
    return out.astype(np.float64)


def standardise(F: np.ndarray) -> np.ndarray:
    std = F.std(axis=0)
    return (F - F.mean(axis=0)) / np.where(std > 0, std, 1.0)


def row_correlations(F: np.ndarray) -> np.ndarray:
    """corrcoef of the rows; a constant row has no correlation: ValueError."""
    Fc = F - F.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", Fc, Fc))
    flat = np.flatnonzero(norms == 0)
    if flat.size:
        raise ValueError(f"PARC: {flat.size} probe row(s) are constant after reduction (first: {int(flat[0])}); "
                         "their correlation is undefined")
    Fn = Fc / norms[:, None]
    return np.clip(Fn @ Fn.T, -1.0, 1.0)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt(np.dot(a, a) * np.dot(b, b))
    if den == 0:
        raise ValueError("PARC is undefined: every probe pair is in the same class or every pair differs")
    return float(np.dot(a, b) / den)
