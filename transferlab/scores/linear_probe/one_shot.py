"""Linear-probe accuracy on frozen features (Renggli et al. 2022, "Which model to transfer?").

Multinomial logistic regression on the frozen features, scored by its accuracy on held-out rows: by
default k-fold cross-validated (``cv=5``: every labelled row is predicted once by a probe that did not
see it), or on one seeded stratified validation split (``cv=None``). Two protocols (SCORES.md):

* ``"lbfgs"`` (default): full-batch L-BFGS on the L2-penalised mean cross-entropy, the objective of
  scikit-learn's ``LogisticRegression(C=C)``; float64 throughout; loss and gradient streamed over row
  blocks on the CPU (numpy GEMMs), or computed by torch on the GPU (the same host-side L-BFGS drives
  both).
* ``"renggli"``: the paper's protocol, plain minibatch SGD, learning rates {0.1, 0.01}, 2500 steps,
  the better learning rate by validation accuracy, median over 5 seeded runs (float64).

Memory: the standardised float64 training rows are cached when they fit ``_CACHE_BYTES``; larger
banks (memory maps bigger than RAM) are re-read and standardised block by block at every step, with
bitwise the same arithmetic, so the result does not depend on the path taken.

Streaming: ``transferlab.scores.streaming.stream("linear_probe")`` (``scores/linear_probe/stream.py``) runs
the "lbfgs" protocol over a bank read in chunks, one pass per loss evaluation, driving the same
solver (:class:`LBFGS`, reverse communication) and the same block and objective functions.
"""
from __future__ import annotations

import math
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from transferlab.core.types import ArrayLike, Device, Features, NanPolicy, Targets, Task
from transferlab.core import cpu_threads
from transferlab.core import devices
from transferlab.core.arrays import Matrix
from transferlab.core.inputs import check_bool, prepare
from transferlab.core.lbfgs import LBFGS, dot
from transferlab.scores.linear_probe import targets as probe_targets
from transferlab.scores.registry import require_task

PROTOCOLS = ("lbfgs", "renggli")

# The protocol of Renggli et al. (Section 4.2, "Linear evaluation"); the batch size is VTAB's 512.
RENGGLI_LRS = (0.1, 0.01)
RENGGLI_STEPS = 2500
RENGGLI_BATCH = 512
RENGGLI_RUNS = 5

_CACHE_BYTES = 1 << 30  # standardised float64 train+val rows kept in memory up to this size
_BLOCK_BYTES = 16 << 20  # float64 rows per block of the full-batch loss (fixes the summation order)


@dataclass(frozen=True)
class LinearProbeResult:
    """Details of ``linear_probe(..., return_details=True)``.

    ``coef`` (C x D) and ``intercept`` (C,) act on the *standardised* features
    ``(x - mean) / scale``; for ``"renggli"`` they are those of the run whose accuracy is the median
    (the first such run), at its selected learning rate.
    """

    score: float
    train_index: np.ndarray  # (N_train,) int64 rows of the input used for training, in canonical order
    val_index: np.ndarray  # (N_val,) int64 rows used for validation, in canonical order
    coef: np.ndarray
    intercept: np.ndarray
    mean: np.ndarray  # (D,) float64 train-split mean (zeros if standardize=False)
    scale: np.ndarray  # (D,) float64 train-split std, 1 where it is 0 (ones if standardize=False)
    loss: float  # final training objective (lbfgs) / final full-train mean cross-entropy (renggli)
    n_iter: int  # L-BFGS iterations (lbfgs) / SGD steps per run (renggli)
    converged: bool
    runs: Optional[np.ndarray]  # renggli: (RUNS, len(LRS)) validation accuracies; None for lbfgs
    classes: np.ndarray
    #: (len(val_index),) float64: 1.0 where the row of ``val_index`` was predicted right (lbfgs; None for renggli,
    #: whose score is a median over runs, not a mean over rows)
    correct: Optional[np.ndarray] = None
    #: with ``cv``: (N,) int64 fold of every input row (-1: a single-sample class's row, never validated)
    folds: Optional[np.ndarray] = None

    @property
    def se(self) -> Optional[float]:
        """Standard error of ``score`` as a mean over the validated rows, ``std(correct, ddof=1) / sqrt(n)``
        (the rows are the sampling unit; the folds' fits are treated as fixed). None without ``correct``."""
        if self.correct is None or self.correct.size < 2:
            return None
        from transferlab.core.paired import standard_error

        return standard_error(self.correct)


def linear_probe(
    features: Features,
    labels: Targets,
    *,
    protocol: str = "lbfgs",
    val_fraction: float = 0.2,
    seed: int = 0,
    device: Device = "auto",
    C: float = 1.0,
    standardize: bool = True,
    max_iter: int = 1000,
    tol: float = 1e-6,
    split: Optional[ArrayLike] = None,
    return_details: bool = False,
    nan_policy: NanPolicy = "raise",
    task: Task = "classification",
    alpha: Optional[Union[float, Sequence[float]]] = None,
    cv: Optional[int] = 5,
) -> Union[float, "LinearProbeResult"]:
    """Linear-probe validation accuracy: how well a linear softmax classifier on the frozen features
    generalises to rows it was not trained on (Renggli et al. 2022).

    Parameters
    ----------
    features : (N, D) array (numpy incl. read-only memmaps, torch CPU/CUDA, anything array-like);
        float16/bfloat16/float32/float64/int/bool, converted to float64 block by block.
    labels : (N,) or (N, 1) class labels of any sortable type (remapped with ``np.unique``).
    protocol : "lbfgs" (default) or "renggli"; see below.
    val_fraction : float in (0, 1), the share of each class held out for validation.
    seed : int >= 0; fixes the split and, for "renggli", the minibatch order.
    device : "auto" | "cpu" | "cuda" | "reference" (the float64 oracle, a different solver).
    C : inverse L2 strength of "lbfgs" (scikit-learn's ``C``); "renggli" is unregularised.
    standardize : z-score every feature with the train split's mean and std (default True).
    max_iter, tol : L-BFGS iteration cap and tolerance on the largest gradient component
        (of the mean-scaled objective, as scikit-learn's ``tol``).
    split : optional ``(train_index, val_index)`` (disjoint row indices) replacing the seeded split,
        e.g. VTAB-1k's fixed 800/200 split.
    return_details : return a :class:`LinearProbeResult` instead of the float.
    nan_policy : "raise" (default) or "omit" (drop rows with NaN/inf first; indices then refer to
        the original rows).
    task : "classification" (default); "regression" (labels = float targets (N,) or (N, T)): ridge on the
        standardised features, score = cross-validated R^2 (``cv`` folds, every row predicted once) or,
        with ``cv=None`` or ``split``, the held-out R^2 of the split; "multilabel" (labels = 0/1 indicators
        (N, L)): one-vs-rest, each label a binary ``linear_probe`` with this call's protocol options (its own
        stratified split / folds; with ``split`` the given one for every label), score = mean per-label accuracy
        (``transferlab.scores.linear_probe.targets``). ``return_details`` is for classification.
    alpha : regression: the ridge strength (scikit-learn ``Ridge``'s ``alpha``); None (default) chooses
        it from ``targets.ALPHAS`` by ``cv``-fold cross-validation (5 when ``cv`` is None) on the training
        rows.
    cv : int >= 2 (default 5) or None. Classification: ``cv=K`` (protocol "lbfgs") scores the
        stratified K-fold cross-validated accuracy; ``None``: one validation split of
        ``val_fraction``. ``split=`` and protocol "renggli" (the paper's fixed-split protocol) always
        use one split. Regression: cross-validated R^2 the same way (see ``task``).

    Why cross-validation by default: with one split of 20%, a 300-row bank is scored on 60 rows, so
    the accuracy moves in steps of 1/60, ties at the top of a pool are common, and a last-bit change
    in the features (another CPU) moves a row across the cut and a model into or out of a tie
    (issue 18). With K folds every labelled row is predicted once (steps of 1/N) and the score's
    standard error (``return_details=True``: ``se``, per-row ``correct`` for paired comparisons across
    models on the same rows) shrinks by sqrt(1 / val_fraction). Cost: K fits instead of one.

    Definition
    ----------
    *Split* (stratified, deterministic, a function of the rows' contents and the seed): every row
    gets two seeded 64-bit hashes of its float64 values (:func:`content_keys`); the *canonical
    order* sorts the rows by (key 0, key 1, class). Of each class c (n_c rows) the ``v_c`` rows
    that come first in canonical order go to validation, ``v_c = floor(val_fraction * n_c + 1/2)``
    clipped to ``[1, n_c - 1]``: every class is in both splits. A class with a single sample goes
    to the train split only (one ``UserWarning``). Train and validation rows are used (and
    returned) in canonical order, so permuting the rows gives bitwise the same fit and score, and
    exact duplicate rows are interchangeable (equal keys). The split ignores label values (a
    bijective relabelling keeps it) but follows the feature values: a transformed bank (columns
    permuted, rescaled) draws another split. ``split`` replaces it by a fixed one, used in the
    order given.

    *Standardisation*: ``x' = (x - mu) / s`` with mu, s the float64 mean and (biased) std of the
    train rows; ``s = 1`` for constant features (scikit-learn's ``StandardScaler``).

    *"lbfgs"*: minimise over W (C x D) and b (C,), starting at 0,
    ``(1/n) sum_i [logsumexp(W x'_i + b) - (W x'_i + b)_{y_i}] + ||W||^2 / (2 C n)``
    (n = train size; the intercept is not penalised: scikit-learn's objective divided by n) with
    L-BFGS (memory 10, Armijo backtracking), stopped when the largest gradient component is
    ``<= tol``, when an iteration lowers f by no more than ``64 eps * f`` (f's own precision), or
    after ``max_iter`` iterations (a ``UserWarning``: the accuracy may still move).

    *"renggli"*: for each run r in 0..4, ``rng_r = np.random.default_rng([seed, r])`` draws the
    minibatch order: epochs are ``rng_r.permutation(n)`` in turn (positions in the train rows'
    canonical order), concatenated, cut into consecutive batches of ``B = min(512, n)`` rows. For
    each learning rate in (0.1, 0.01), from W = 0, b = 0, 2500 steps of ``W -= lr * G^T X_B / B``,
    ``b -= lr * sum(G) / B`` with ``G = softmax(X_B W^T + b) - onehot(y_B)``. A run's accuracy is
    the better of its two final validation accuracies (a tie keeps 0.1); the score is the median
    over the 5 runs. The paper probes raw features: ``standardize=False`` reproduces that.

    Prediction is the argmax of ``W x' + b`` (ties to the lower class code). Score = the fraction of
    validation rows predicted right (higher = more transferable).

    *Cross-validation* (``cv=K``): the rows grouped by class (ascending code), in canonical order
    inside each class, go to folds 0, 1, ..., K-1, 0, 1, ... in turn (round robin: every fold
    stratified, sizes within one, and a function of the rows' contents and the seed as the split
    is); single-sample classes train in
    every fold and are never validated (one ``UserWarning``). For each fold k the probe above
    (standardisation included) is fitted on every row outside fold k and predicts fold k. Score =
    (rows predicted right) / (validated rows). Every fold must hold a row: ``K`` cannot exceed the
    number of validated rows. Details: ``val_index`` = the validated rows in ascending input order,
    ``correct`` per row of it, ``folds`` per input row, ``train_index`` = the rows never validated;
    ``coef``, ``intercept``, ``mean``, ``scale``, ``loss``, ``n_iter`` are those of fold 0's fit and
    ``converged`` holds for all folds.

    Memory: O(C * D) plus fixed working blocks; no N x C matrix (logits are formed for row blocks
    of ``_BLOCK_BYTES / (8 * max(D, C))`` rows), so 10^4+ classes are fine.

    Determinism: for a given seed the result is bitwise the same on any thread count
    (``transferlab.threads``): the CPU work runs in fixed chunks with BLAS pinned to one thread per
    worker (through threadpoolctl; without it, bitwise only for a fixed thread count). The GPU path
    computes the same float64 quantities with torch and agrees with the CPU to rounding.

    Returns
    -------
    float in [0, 1], or a :class:`LinearProbeResult`.
    """
    protocol, val_fraction, seed, C, max_iter, tol = _check_args(protocol, val_fraction, seed, C, max_iter, tol)
    cv = check_cv(cv)
    standardize, return_details = check_bool(standardize, "standardize"), check_bool(return_details, "return_details")
    if require_task("linear_probe", task) != "classification":
        if return_details:
            raise ValueError(f"return_details=True is for task='classification'; with task={task!r} call without it")
        return _probe_targets(features, labels, task, protocol=protocol, val_fraction=val_fraction, seed=seed,
                              device=device, C=C, standardize=standardize, max_iter=max_iter, tol=tol, split=split,
                              nan_policy=nan_policy, alpha=alpha, cv=cv)
    if cv is not None and split is None and protocol == "lbfgs":
        return _cross_validated(features, labels, cv, seed, device, C, standardize, max_iter, tol, return_details,
                                nan_policy)
    # Placed after the split: the split's content keys are computed on the rows as given.
    m, lab, dev, keep = prepare(
        features, labels, nan_policy=nan_policy, device=device, min_samples=3 if split is None else 1, place=False,
        too_few="linear_probe needs at least 3 samples (2 classes, one of them with a sample to validate on), "
                "got n_samples={n}")
    y = lab.codes
    if split is None:
        train_idx, val_idx = stratified_split(content_keys(m, seed), y, lab.n_classes, val_fraction)
    else:
        train_idx, val_idx = _check_split(split, m.n, keep)

    if dev == "reference":
        from transferlab.reference.linear_probe import fit_and_score

        out = fit_and_score(m.to_float64_host(), y, lab.n_classes, train_idx, val_idx, protocol=protocol,
                            seed=seed, C=C, standardize=standardize)
    else:
        placed = devices.place(m, dev)
        with _Workers() as workers:
            if dev == "cuda":
                design = _TorchDesign(placed, y, train_idx, val_idx, lab.n_classes, standardize)
            else:
                design = _NumpyDesign(placed, y, train_idx, val_idx, lab.n_classes, standardize, workers)
            if protocol == "lbfgs":
                out = _fit_lbfgs(design, C, max_iter, tol)
                if return_details:
                    out["correct"] = _correct_rows(design, out["coef"], out["intercept"])
            else:
                out = _fit_renggli(design, seed)
    score = out["score"]
    if not return_details:
        return score
    if keep is not None:
        train_idx, val_idx = keep[train_idx], keep[val_idx]
    return LinearProbeResult(score, train_idx, val_idx, out["coef"], out["intercept"], out["mean"], out["scale"],
                             out["loss"], out["n_iter"], out["converged"], out["runs"], lab.classes, out.get("correct"))


def check_cv(cv) -> Optional[int]:
    """``cv`` as an int >= 2, or None."""
    if cv is None:
        return None
    if isinstance(cv, bool) or not isinstance(cv, Integral):
        raise TypeError(f"cv must be an int >= 2 (folds) or None (one validation split), got {type(cv).__name__}")
    if cv < 2:
        raise ValueError(f"cv must be an int >= 2 (folds) or None (one validation split), got {cv}")
    return int(cv)


def stratified_folds(keys: np.ndarray, codes: np.ndarray, n_classes: int, k: int) -> np.ndarray:
    """Fold (0..k-1) of every row, -1 for single-sample classes: the rows grouped by class (ascending code),
    canonical order (ascending ``(key_0, key_1, class code)``) inside each class, dealt to folds 0, 1, ...,
    k-1 in turn (so every fold is stratified and the fold sizes differ by at most one)."""
    codes = np.asarray(codes)
    n = codes.shape[0]
    order = np.lexsort((codes, keys[:, 1], keys[:, 0]))
    by_class = order[np.argsort(codes[order], kind="stable")]
    counts = np.bincount(codes, minlength=n_classes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(n) - np.repeat(starts, counts)
    folds = np.empty(n, dtype=np.int64)
    folds[by_class] = (starts[codes[by_class]] + pos) % k  # = position in the class-grouped order mod k
    folds[counts[codes] < 2] = -1
    singles = int(np.sum(counts == 1))
    if singles:
        warnings.warn(f"{singles} class(es) have a single sample; it is used for training only (it cannot be "
                      "validated)", UserWarning, stacklevel=3)
    sizes = np.bincount(folds[folds >= 0], minlength=k)
    if sizes.min() == 0:
        raise ValueError(f"cv={k} needs at least {k} rows in classes with 2+ samples, got {int((folds >= 0).sum())}"
                         " (lower cv, or cv=None for one validation split)")
    return folds


def _correct_rows(design, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per validation row of ``design`` (its order): 1.0 where predicted right."""
    if isinstance(design, _TorchDesign):
        Wt, bt = design._t(W), design._t(b)
        out = []
        for s in range(0, design.val_idx.size, design.step):
            pred = (design.Xva[s : s + design.step] @ Wt.T + bt).argmax(dim=1)
            out.append((pred == design.y_val[s : s + design.step]).cpu().numpy())
        return np.concatenate(out).astype(np.float64)
    return np.concatenate([block_correct(design.block("val", s), design.y_val[s : s + design.step], W, b)
                           for s in design.blocks("val")]).astype(np.float64)


def _cross_validated(features, labels, cv: int, seed: int, device, C: float, standardize: bool, max_iter: int,
                     tol: float, return_details: bool, nan_policy: str):
    """The ``cv=K`` path of :func:`linear_probe` (protocol "lbfgs")."""
    m, lab, dev, keep = prepare(
        features, labels, nan_policy=nan_policy, device=device, min_samples=3, place=False,
        too_few="linear_probe needs at least 3 samples (2 classes, one of them with a sample to validate on), "
                "got n_samples={n}")
    y = lab.codes
    keys = content_keys(m, seed)
    folds = stratified_folds(keys, y, lab.n_classes, cv)
    order = np.lexsort((y, keys[:, 1], keys[:, 0]))  # canonical order, as the split uses
    correct = np.zeros(m.n)
    first = None
    converged = True
    placed = None if dev == "reference" else devices.place(m, dev)
    with _Workers() as workers:
        for k in range(cv):
            in_k = folds[order] == k
            train_idx, val_idx = order[~in_k], order[in_k]  # canonical order inside each side
            if dev == "reference":
                from transferlab.reference.linear_probe import fit_and_score

                out = fit_and_score(m.to_float64_host(), y, lab.n_classes, train_idx, val_idx, protocol="lbfgs",
                                    seed=seed, C=C, standardize=standardize)
                correct[val_idx] = out["correct"]
            else:
                if dev == "cuda":
                    design = _TorchDesign(placed, y, train_idx, val_idx, lab.n_classes, standardize)
                else:
                    design = _NumpyDesign(placed, y, train_idx, val_idx, lab.n_classes, standardize, workers)
                out = _fit_lbfgs(design, C, max_iter, tol)
                correct[val_idx] = _correct_rows(design, out["coef"], out["intercept"])
            converged = converged and out["converged"]
            if first is None:
                first = out
    validated = np.flatnonzero(folds >= 0)
    score = float(correct[validated].sum() / validated.size)
    if not return_details:
        return score
    never = np.flatnonzero(folds < 0)
    fold_of = folds
    if keep is not None:
        validated, never = keep[validated], keep[never]
        fold_of = np.full(np.shape(labels)[0], -1, dtype=np.int64)
        fold_of[keep] = folds
    return LinearProbeResult(score, never.astype(np.int64), validated.astype(np.int64), first["coef"],
                             first["intercept"], first["mean"], first["scale"], first["loss"], first["n_iter"],
                             converged, None, lab.classes, correct[folds >= 0], fold_of)


def _probe_targets(features, labels, task: str, *, protocol, val_fraction, seed, device, C, standardize, max_iter, tol,
                   split, nan_policy, alpha, cv) -> float:
    """``linear_probe`` with task "regression" (ridge, held-out R^2) or "multilabel" (one-vs-rest)."""
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, Real) or not alpha > 0
                              or not math.isfinite(alpha)):
        raise ValueError(f"alpha must be a positive finite number or None, got {alpha!r}")
    m, tg, dev, keep = prepare(features, labels, nan_policy=nan_policy, device=device,
                               min_samples=2 if split is None else 1, place=False, task=task,
                               too_few="linear_probe needs at least 2 samples (one to train, one to validate), "
                                       "got n_samples={n}")
    if task == "regression" and split is None and cv is not None:
        order = probe_targets.canonical_rows(content_keys(m, seed))
        return probe_targets.ridge_cross_validated(m, tg.values, order, cv, alpha=alpha, standardize=standardize)
    dev_arg = "reference" if dev == "reference" else device
    if task == "multilabel" and split is None:
        # One-vs-rest: each label is a binary problem scored with the classifier's own protocol (its stratified
        # split or folds, cv and val_fraction as given); the score is the mean per-label accuracy.
        return float(np.mean([linear_probe(m, tg.values[:, j].astype(np.int64), protocol=protocol,
                                           val_fraction=val_fraction, seed=seed, device=dev_arg, C=C,
                                           standardize=standardize, max_iter=max_iter, tol=tol, cv=cv)
                              for j in range(tg.n_targets)]))
    if split is None:
        train_idx, val_idx = probe_targets.split_rows(content_keys(m, seed), val_fraction, stratified_split)
    else:
        train_idx, val_idx = _check_split(split, m.n, keep)
    if task == "regression":
        return probe_targets.ridge_probe(m, tg.values, train_idx, val_idx, alpha=alpha, cv=cv,
                                         standardize=standardize)
    def binary(mm, column, sp):
        return linear_probe(mm, column, protocol=protocol, seed=seed, device=dev_arg, C=C, standardize=standardize,
                            max_iter=max_iter, tol=tol, split=sp)

    return probe_targets.multilabel_probe(m, tg.values, train_idx, val_idx, binary)


# ---------------------------------------------------------------------------- arguments and split


def _check_args(protocol, val_fraction, seed, C, max_iter, tol):
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, Real):
        raise TypeError(f"val_fraction must be a float in (0, 1), got {type(val_fraction).__name__}")
    val_fraction = float(val_fraction)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1) (exclusive), got {val_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if isinstance(C, bool) or not isinstance(C, Real) or not (math.isfinite(C) and C > 0):
        raise ValueError(f"C must be a positive finite number (inverse L2 strength), got {C!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    if isinstance(tol, bool) or not isinstance(tol, Real) or not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    return protocol, val_fraction, int(seed), float(C), int(max_iter), float(tol)


_MIX1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64's finaliser constants
_MIX2 = np.uint64(0x94D049BB133111EB)


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (a bijection of uint64 that spreads every input bit over the output)."""
    h = h ^ (h >> np.uint64(30))
    h = h * _MIX1
    h = h ^ (h >> np.uint64(27))
    h = h * _MIX2
    return h ^ (h >> np.uint64(31))


def content_keys(m: Matrix, seed: int) -> np.ndarray:
    """(N, 2) uint64 seeded hashes of every row's float64 values: the order of the seeded split.

    ``key_k(x) = mix64(sum_j bits(x_j + 0.0) * a_kj mod 2^64)`` with ``a = default_rng(seed)``'s
    ``integers(0, 2**64, size=(2, D), dtype=uint64) | 1`` (odd multipliers), ``bits`` the IEEE-754
    pattern (``+ 0.0`` maps -0.0 to 0.0) and ``mix64`` splitmix64's finaliser.

    Why integer hashes and not float projections: a sum modulo 2^64 is exact and associative, so a
    row's key is bitwise the same wherever the row sits (any block, any alignment, any BLAS), and
    exact duplicates always tie; and hash order is pseudo-random, whereas ordering by a projection
    would hold out one end of every class along a random direction (a biased split).
    Streams the rows in blocks of ``_BLOCK_BYTES`` (memory O(block + D)).
    """
    a = key_multipliers(seed, m.d)
    keys = np.empty((m.n, 2), dtype=np.uint64)
    step = max(1, _BLOCK_BYTES // (8 * m.d))
    for s in range(0, m.n, step):
        keys[s : s + step] = row_keys(m.to_float64_host(s, min(s + step, m.n)), a)
    return keys


def key_multipliers(seed: int, d: int) -> np.ndarray:
    """The (2, D) odd uint64 multipliers of :func:`content_keys`."""
    return np.random.default_rng(seed).integers(0, 2**64, size=(2, d), dtype=np.uint64) | np.uint64(1)


def row_keys(x64: np.ndarray, a: np.ndarray) -> np.ndarray:
    """(n, 2) uint64 keys of float64 rows ``x64`` with multipliers ``a`` (see :func:`content_keys`)."""
    bits = (x64 + 0.0).view(np.uint64)  # a new array: never a view of the caller's
    keys = np.empty((x64.shape[0], 2), dtype=np.uint64)
    for k in range(2):
        # uint64 arithmetic wraps mod 2^64 exactly, so any summation order gives the same bits;
        # einsum does it without an n x D temporary (4x faster than a product then a sum)
        keys[:, k] = _mix64(np.einsum("ij,j->i", bits, a[k]))
    return keys


def stratified_split(keys: np.ndarray, codes: np.ndarray, n_classes: int,
                     val_fraction: float) -> Tuple[np.ndarray, np.ndarray]:
    """The seeded stratified split of the ``linear_probe`` docstring: (train_index, val_index), each
    int64 in the canonical order (ascending ``(key_0, key_1, class code)``; ``keys`` from
    :func:`content_keys`)."""
    codes = np.asarray(codes)
    n = codes.shape[0]
    order = np.lexsort((codes, keys[:, 1], keys[:, 0]))  # canonical order: by content, then class
    by_class = order[np.argsort(codes[order], kind="stable")]  # grouped by class, canonical inside
    counts = np.bincount(codes, minlength=n_classes)
    v = np.clip(np.floor(val_fraction * counts + 0.5).astype(np.int64), 1, np.maximum(counts - 1, 0))
    v[counts < 2] = 0
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(n) - np.repeat(starts, counts)  # canonical position of each row inside its class
    is_val = np.zeros(n, dtype=bool)
    is_val[by_class[pos < np.repeat(v, counts)]] = True
    singles = int(np.sum(counts == 1))
    if singles:
        warnings.warn(
            f"{singles} class(es) have a single sample; it is used for training only (it cannot be "
            "validated)",
            UserWarning,
            stacklevel=3,
        )
    val = order[is_val[order]]
    if val.size == 0:
        raise ValueError("every class has a single sample: nothing is left to validate on")
    return order[~is_val[order]].astype(np.int64), val.astype(np.int64)


def _check_split(split, n: int, keep: Optional[np.ndarray]):
    if keep is not None:
        raise ValueError("split= and nan_policy='omit' cannot be combined; drop the rows first")
    try:
        tr, va = split
    except (TypeError, ValueError):
        raise TypeError("split must be a pair (train_index, val_index) of integer arrays") from None
    out = []
    for name, a in (("train_index", tr), ("val_index", va)):
        a = np.asarray(a)
        if a.ndim != 1 or a.dtype.kind not in "iu":
            raise TypeError(f"split {name} must be a 1-D integer array, got shape {a.shape} dtype {a.dtype}")
        if a.size == 0:
            raise ValueError(f"split {name} is empty")
        if a.min() < 0 or a.max() >= n:
            raise ValueError(f"split {name} holds indices outside [0, {n - 1}] (n_samples={n})")
        if np.unique(a).size != a.size:
            raise ValueError(f"split {name} holds repeated indices")
        out.append(a.astype(np.int64))
    if np.intersect1d(out[0], out[1]).size:
        raise ValueError("split train_index and val_index overlap")
    return out[0], out[1]


# ---------------------------------------------------------------------------- numeric core


_ROW_CHUNK = 128  # rows per task of a minibatch (logits, softmax and gradient of those rows)


class _Workers:
    """Runs fixed chunks of BLAS work on transferlab's thread count, each chunk on one BLAS thread.

    A threaded BLAS sums in an order that depends on its thread count. Here the chunks, and the order
    in which their partial sums are added, never depend on it, so results are bitwise the same for
    any ``transferlab.threads(n)``. Pinning BLAS to one thread needs threadpoolctl (process-wide while
    the score runs); without it BLAS keeps its own threads and results are bitwise reproducible for
    a fixed thread count only.
    """

    def __init__(self):
        self.n = max(1, cpu_threads.effective_threads())
        self._limits = None
        self._pool: Optional[ThreadPoolExecutor] = None

    def __enter__(self) -> "_Workers":
        self._limits = cpu_threads.blas_single_threaded()
        self._limits.__enter__()
        if self.n > 1:
            self._pool = ThreadPoolExecutor(self.n, thread_name_prefix="transferlab-probe")
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        if self._limits is not None:
            self._limits.__exit__(None, None, None)

    def ordered(self, fn: Callable, items: Iterable) -> Iterator:
        """``fn`` over ``items``, results yielded in item order, at most 2n tasks in flight."""
        items = list(items)
        if self._pool is None or len(items) < 2:
            for it in items:
                yield fn(it)
            return
        pending: deque = deque()
        for it in items:
            pending.append(self._pool.submit(fn, it))
            if len(pending) >= 2 * self.n:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _softmax_grad_np(Z: np.ndarray, y: np.ndarray, weight: Optional[np.ndarray] = None) -> Tuple[float, np.ndarray]:
    """Summed cross-entropy of logits Z (modified in place into softmax(Z) - onehot(y)); with
    ``weight`` (per row) the weighted sum, and G's rows scaled by it."""
    rows = np.arange(Z.shape[0])
    zmax = Z.max(axis=1, keepdims=True)
    picked = Z[rows, y] - zmax[:, 0]
    Z -= zmax
    np.exp(Z, out=Z)
    s = Z.sum(axis=1, keepdims=True)
    Z /= s
    Z[rows, y] -= 1.0
    if weight is not None:
        Z *= weight[:, None]
        return float(np.sum(weight * (np.log(s[:, 0]) - picked))), Z
    return float(np.sum(np.log(s[:, 0]) - picked)), Z


def block_loss_grad(X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray,
                    weight: Optional[np.ndarray] = None):
    """Summed cross-entropy of standardised rows X (labels y) under (W, b), and its gradient as
    (loss, X^T G: D x C, column sums of G: C), G = softmax(X W^T + b) - onehot(y); ``weight``: per-row
    weights (the streaming probe's duplicate rows that straddle the split)."""
    loss, G = _softmax_grad_np(X @ W.T + b, y, weight)
    return loss, X.T @ G, G.sum(axis=0)  # X^T G runs ~2x faster than G^T X in OpenBLAS


def block_correct(X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row: is the prediction (argmax of W x + b, ties to the lower code) the label? (bool)"""
    return np.argmax(X @ W.T + b, axis=1) == y


def standardise(raw: np.ndarray, mean: np.ndarray, scale: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = (raw - mean) / scale`` (never in place on ``raw``: it can be a view of the caller's array)."""
    np.subtract(raw, mean, out=out)
    out /= scale
    return out


def centred_squares(raw: np.ndarray, mean: np.ndarray, weight: Optional[np.ndarray] = None) -> np.ndarray:
    """Column sums of (raw - mean)^2 (weighted per row by ``weight`` if given): the second pass of
    the standardisation moments."""
    block = raw - mean
    if weight is not None:
        return np.einsum("ij,ij->j", block * weight[:, None], block)
    return np.einsum("ij,ij->j", block, block)


def scale_of(sq: np.ndarray, n: int) -> np.ndarray:
    """The standardisation scale from the summed squared deviations: the biased std, 1 where it is 0."""
    std = np.sqrt(sq / n)
    return np.where(std == 0, 1.0, std)


def _block_rows(d: int, n_classes: int) -> int:
    """Rows per block: a block of standardised rows (step x D) or of its logits (step x C) stays
    within ``_BLOCK_BYTES``, so peak memory is O(C * D + block) however many classes there are."""
    return max(1, _BLOCK_BYTES // (8 * max(d, n_classes)))


class _NumpyDesign:
    """Standardised float64 train/val rows on the host, cached or streamed in fixed blocks."""

    def __init__(self, m: Matrix, y, train_idx, val_idx, n_classes: int, standardize: bool,
                 workers: Optional[_Workers] = None):
        self.m, self.n_classes, self.d = m, n_classes, m.d
        self.workers = workers if workers is not None else _Workers()
        self.train_idx, self.val_idx = train_idx, val_idx
        self.y_train, self.y_val = y[train_idx].astype(np.intp), y[val_idx].astype(np.intp)
        self.n = train_idx.size
        self.step = _block_rows(m.d, n_classes)
        # Every path below reads contiguous index runs in the same blocks, so sums run in one order.
        self.mean = np.zeros(m.d)
        self.scale = np.ones(m.d)
        if standardize:
            self.mean, self.scale = self._moments()
        self.cache = None
        if (train_idx.size + val_idx.size) * m.d * 8 <= _CACHE_BYTES:
            self.cache = (self._standardised(train_idx), self._standardised(val_idx))

    def _raw(self, idx: np.ndarray) -> np.ndarray:
        if idx.size and idx[-1] - idx[0] + 1 == idx.size and np.all(np.diff(idx) == 1):
            return self.m.to_float64_host(int(idx[0]), int(idx[-1]) + 1)  # a contiguous run: no gather
        # Canonical order is pseudo-random over the file: gather in ascending row order (sequential
        # reads of a memmap), then put the rows back in canonical order (the same values).
        srt = np.argsort(idx, kind="stable")
        rows = self.m.take(idx[srt]).to_float64_host()
        out = np.empty_like(rows)
        out[srt] = rows
        return out

    def _moments(self):
        total = np.zeros(self.d)
        for s in range(0, self.n, self.step):
            total += self._raw(self.train_idx[s : s + self.step]).sum(axis=0)
        mean = total / self.n
        sq = np.zeros(self.d)
        for s in range(0, self.n, self.step):
            sq += centred_squares(self._raw(self.train_idx[s : s + self.step]), mean)
        return mean, scale_of(sq, self.n)

    def _standardised(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((idx.size, self.d))
        for s in range(0, idx.size, self.step):
            # never in place on _raw's result: for float64 input it can be a view of the caller's array
            standardise(self._raw(idx[s : s + self.step]), self.mean, self.scale, out[s : s + self.step])
        return out

    def blocks(self, which: str) -> range:
        """Offsets of the fixed row blocks of the train or val split."""
        return range(0, (self.train_idx if which == "train" else self.val_idx).size, self.step)

    def block(self, which: str, s: int) -> np.ndarray:
        """Standardised rows [s, s + step) of the split (a view of the cache, or read and standardised)."""
        if self.cache is not None:
            return self.cache[0 if which == "train" else 1][s : s + self.step]
        return self._standardised((self.train_idx if which == "train" else self.val_idx)[s : s + self.step])

    def train_rows(self, pos: np.ndarray) -> np.ndarray:
        """Standardised train rows at positions ``pos`` (bitwise the same on both paths)."""
        if self.cache is not None:
            return self.cache[0][pos]
        return self._standardised(self.train_idx[pos])

    def loss_grad(self, W: np.ndarray, b: np.ndarray):
        """Summed cross-entropy over the train split and its gradient (G^T X: C x D, colsum: C)."""

        def part(s):
            X = self.block("train", s)
            return block_loss_grad(X, self.y_train[s : s + X.shape[0]], W, b)

        gWT = np.zeros((W.shape[1], W.shape[0]))
        gb = np.zeros_like(b)
        loss = 0.0
        for l, g, c in self.workers.ordered(part, self.blocks("train")):
            loss += l
            gWT += g
            gb += c
        return loss, gWT.T, gb

    def batch_step(self, pos: np.ndarray, W: np.ndarray, b: np.ndarray, lrs: np.ndarray):
        """One SGD step for stacked weights (L x C x D) at learning rates ``lrs`` on train rows ``pos``."""
        X = self.train_rows(pos)
        yb = self.y_train[pos]
        B = X.shape[0]
        L, C, D = W.shape
        Wf = W.reshape(L * C, D)
        bf = b.reshape(L * C)
        rows = max(1, min(_ROW_CHUNK, _BLOCK_BYTES // (8 * L * C)))  # logits chunk <= a block

        def part(s):
            Xc = X[s : s + rows]
            Z = (Xc @ Wf.T + bf).reshape(Xc.shape[0], L, C)
            for l in range(L):
                _softmax_grad_np(Z[:, l, :], yb[s : s + rows])  # Z[:, l, :] is a view: G overwrites it
            G = Z.reshape(Xc.shape[0], L * C)
            return Xc.T @ G, G.sum(axis=0)

        gT = np.zeros((D, L * C))
        gb = np.zeros(L * C)
        for g, c in self.workers.ordered(part, range(0, B, rows)):  # fixed chunks, summed in order
            gT += g
            gb += c
        scale = (lrs / B)[:, None]
        W -= gT.T.reshape(L, C, D) * scale[:, :, None]
        b -= gb.reshape(L, C) * scale
        return W, b

    def accuracy(self, W: np.ndarray, b: np.ndarray) -> float:
        def right(s):
            X = self.block("val", s)
            return int(np.sum(block_correct(X, self.y_val[s : s + X.shape[0]], W, b)))

        return sum(self.workers.ordered(right, self.blocks("val"))) / self.val_idx.size


class _TorchDesign:
    """The same operations with torch on the matrix's device (CUDA), all rows resident there."""

    def __init__(self, m: Matrix, y, train_idx, val_idx, n_classes: int, standardize: bool):
        import torch

        self.torch, self.n_classes, self.d = torch, n_classes, m.d
        self.step = _block_rows(m.d, n_classes)
        self.train_idx, self.val_idx = train_idx, val_idx
        self.n = train_idx.size
        dev = m.data.device
        self.device = dev
        data = m.data
        tr = data.index_select(0, torch.as_tensor(train_idx, device=dev)).to(torch.float64)
        va = data.index_select(0, torch.as_tensor(val_idx, device=dev)).to(torch.float64)
        mean = torch.zeros(m.d, dtype=torch.float64, device=dev)
        scale = torch.ones(m.d, dtype=torch.float64, device=dev)
        if standardize:
            mean = tr.mean(dim=0)
            std = (tr - mean).square().mean(dim=0).sqrt()
            scale = torch.where(std == 0, torch.ones_like(std), std)
            tr = (tr - mean) / scale
            va = (va - mean) / scale
        self.Xtr, self.Xva = tr.contiguous(), va.contiguous()
        self.mean, self.scale = mean.cpu().numpy(), scale.cpu().numpy()
        self.y_train = torch.as_tensor(y[train_idx].astype(np.int64), device=dev)
        self.y_val = torch.as_tensor(y[val_idx].astype(np.int64), device=dev)

    def _t(self, a):
        return self.torch.as_tensor(a, device=self.device)

    def _ce_grad(self, Z, yb):
        torch = self.torch
        lse = torch.logsumexp(Z, dim=1)
        loss = (lse - Z.gather(1, yb[:, None])[:, 0]).sum()
        G = torch.exp(Z - lse[:, None])
        G[torch.arange(Z.shape[0], device=Z.device), yb] -= 1.0
        return loss, G

    def loss_grad(self, W: np.ndarray, b: np.ndarray):
        Wt, bt = self._t(W), self._t(b)
        loss = self.torch.zeros((), dtype=self.torch.float64, device=self.device)
        gW, gb = self.torch.zeros_like(Wt), self.torch.zeros_like(bt)
        for s in range(0, self.n, self.step):  # row blocks: logits never N x C
            X = self.Xtr[s : s + self.step]
            l, G = self._ce_grad(X @ Wt.T + bt, self.y_train[s : s + self.step])
            loss += l
            gW += G.T @ X
            gb += G.sum(dim=0)
        return float(loss), gW.cpu().numpy(), gb.cpu().numpy()

    def sgd(self, schedule: np.ndarray, steps: int, batch: int, W: np.ndarray, b: np.ndarray, lrs: np.ndarray):
        torch = self.torch
        Wt, bt = self._t(W).clone(), self._t(b).clone()
        L, C, D = Wt.shape
        sched = self._t(schedule)
        lr = self._t(lrs)[:, None] / batch
        rows = max(1, min(batch, _BLOCK_BYTES // (8 * L * C)))  # logits chunk <= a block
        for t in range(steps):
            pos = sched[t * batch : (t + 1) * batch]
            gW = torch.zeros((L * C, D), dtype=torch.float64, device=self.device)
            gb = torch.zeros(L * C, dtype=torch.float64, device=self.device)
            for s in range(0, batch, rows):
                X = self.Xtr.index_select(0, pos[s : s + rows])
                yb = self.y_train.index_select(0, pos[s : s + rows])
                Z = (X @ Wt.reshape(L * C, D).T).reshape(X.shape[0], L, C) + bt[None]
                Gs = [self._ce_grad(Z[:, l, :], yb)[1] for l in range(L)]
                G = torch.stack(Gs, dim=1).reshape(X.shape[0], L * C)
                gW += G.T @ X
                gb += G.sum(dim=0)
            Wt -= gW.reshape(L, C, D) * lr[:, :, None]
            bt -= gb.reshape(L, C) * lr
        return Wt.cpu().numpy(), bt.cpu().numpy()

    def accuracy(self, W: np.ndarray, b: np.ndarray) -> float:
        Wt, bt = self._t(W), self._t(b)
        right = 0
        for s in range(0, self.val_idx.size, self.step):
            pred = (self.Xva[s : s + self.step] @ Wt.T + bt).argmax(dim=1)
            right += int((pred == self.y_val[s : s + self.step]).sum())
        return right / self.val_idx.size


# ---------------------------------------------------------------------------- protocols


def probe_objective(theta: np.ndarray, loss: float, gW: np.ndarray, gb: np.ndarray, n: int,
                    C: float) -> Tuple[float, np.ndarray]:
    """The "lbfgs" objective and its gradient at ``theta = [W.ravel(), b]`` from the summed
    cross-entropy ``loss`` of the n train rows and its gradient (``gW``: C x D, ``gb``: C):
    ``f = loss / n + ||W||^2 / (2 C n)``. Shared by the one-shot and the streaming probe."""
    kd = gW.size
    reg = 1.0 / (C * n)
    W = theta[:kd].reshape(gW.shape)
    f = loss / n + 0.5 * reg * dot(theta[:kd], theta[:kd])
    g = np.concatenate([(gW / n + reg * W).ravel(), gb / n])
    return f, g


def lbfgs_solver(n_classes: int, d: int, max_iter: int, tol: float) -> LBFGS:
    """The "lbfgs" protocol's solver, started at W = 0, b = 0."""
    return LBFGS(np.zeros(n_classes * d + n_classes), max_iter, tol, 64 * np.finfo(float).eps)


def split_theta(theta: np.ndarray, n_classes: int, d: int) -> Tuple[np.ndarray, np.ndarray]:
    """(W: C x D, b: C) views of ``theta``."""
    return theta[: n_classes * d].reshape(n_classes, d), theta[n_classes * d :]


def warn_max_iter(status: int, max_iter: int, tol: float, stacklevel: int) -> None:
    if status == 1:
        warnings.warn(
            f"linear_probe: L-BFGS stopped at max_iter={max_iter} before reaching tol={tol}; the accuracy "
            "may still change: raise max_iter (or tol)",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


def _fit_lbfgs(design, C: float, max_iter: int, tol: float) -> dict:
    k, d, n = design.n_classes, design.d, design.n
    opt = lbfgs_solver(k, d, max_iter, tol)
    while not opt.done:
        W, b = split_theta(opt.point, k, d)
        loss, gW, gb = design.loss_grad(W, b)
        opt.tell(*probe_objective(opt.point, loss, gW, gb, n, C))
    x, f, nit, status = opt.result
    warn_max_iter(status, max_iter, tol, stacklevel=3)
    W, b = split_theta(x, k, d)
    return {"score": design.accuracy(W, b), "coef": W, "intercept": b, "mean": design.mean,
            "scale": design.scale, "loss": float(f), "n_iter": int(nit), "converged": status != 1, "runs": None}


def renggli_schedule(seed: int, run: int, n: int, steps: Optional[int] = None,
                     batch: int = RENGGLI_BATCH) -> np.ndarray:
    """Train-row positions of every minibatch of one run, concatenated (``steps * min(batch, n)``)."""
    steps = RENGGLI_STEPS if steps is None else steps
    batch = min(batch, n)
    rng = np.random.default_rng([seed, run])
    epochs = -(-steps * batch // n)
    return np.concatenate([rng.permutation(n) for _ in range(epochs)])[: steps * batch]


def _fit_renggli(design, seed: int) -> dict:
    k, d, n = design.n_classes, design.d, design.n
    batch = min(RENGGLI_BATCH, n)
    lrs = np.asarray(RENGGLI_LRS, dtype=np.float64)
    accs = np.zeros((RENGGLI_RUNS, lrs.size))
    weights: List[Tuple[np.ndarray, np.ndarray]] = []
    for r in range(RENGGLI_RUNS):
        sched = renggli_schedule(seed, r, n)
        W = np.zeros((lrs.size, k, d))
        b = np.zeros((lrs.size, k))
        if isinstance(design, _TorchDesign):
            W, b = design.sgd(sched, RENGGLI_STEPS, batch, W, b, lrs)
        else:
            for t in range(RENGGLI_STEPS):
                W, b = design.batch_step(sched[t * batch : (t + 1) * batch], W, b, lrs)
        for l in range(lrs.size):
            accs[r, l] = design.accuracy(W[l], b[l])
        best = int(np.argmax(accs[r]))  # ties go to the larger learning rate (listed first)
        weights.append((W[best], b[best]))
    per_run = accs.max(axis=1)
    med = float(np.median(per_run))
    which = int(np.flatnonzero(per_run == med)[0])
    W, b = weights[which]
    loss, _, _ = design.loss_grad(W, b)
    return {"score": med, "coef": W, "intercept": b, "mean": design.mean, "scale": design.scale,
            "loss": loss / n, "n_iter": RENGGLI_STEPS, "converged": True, "runs": accs}
