"""NLEEP: Gaussian-mixture LEEP (Li et al. 2021)."""
from __future__ import annotations

import warnings

from typing import Union

import numpy as np

from transferlab.core.types import Device, Features, NanPolicy, RowOrder, Targets, Task
from transferlab.scores.registry import require_task

from transferlab.core import cpu_threads
from transferlab.scores import _gram
from transferlab.core.inputs import prepare
from transferlab.core.row_order import canonical_order, check_row_order

RULES = ("5c", "ratio")
_REG_COVAR_RETRIES = (1e-6, 1e-5, 1e-4, 1e-3)  # 1e-6: scikit-learn's default


def nleep(
    features: Features,
    labels: Targets,
    *,
    components: Union[int, str] = "5c",
    var_ratio: float = 0.8,
    random_state: int = 123,
    device: Device = "auto",
    nan_policy: NanPolicy = "raise",
    task: Task = "classification",
    row_order: RowOrder = "canonical",
) -> float:
    """NLEEP: LEEP of the target labels given the posteriors of a Gaussian mixture on PCA features.

    Li et al. 2021, "Ranking Neural Checkpoints".

    Parameters
    ----------
    features : (N, D); labels : (N,).
    components : "5c" (default: K = 5 C, as published), "ratio" (K = max(min(C, 0.2 N), 0.1 N),
        the other published rule, truncated to an int) or an int K (K > N: ValueError).
        Fallback of "5c" when 5 C > N (fewer than 5 samples per class, e.g. 10,000 classes in
        20,000 samples), where a K = 5 C mixture cannot be fitted: K = max(2, N // 10), i.e. 10
        samples per component on average (the 0.1 N floor of the "ratio" rule; a cap that keeps
        the O(N K) EM tractable), with a UserWarning naming both values.
    var_ratio : PCA keeps the fewest leading components whose explained variance exceeds this
        fraction (0.8; scikit-learn's rule), exact (one eigensolve of the centred Gram, float64).
    random_state : seed of scikit-learn's ``GaussianMixture`` (123 reproduces the published numbers).
    device : "auto" | "cpu" | "cuda" (PCA and projection on the GPU, the mixture fit on the host) | "reference"; nan_policy : "raise" | "omit".

    Definition
    ----------
    Z = the PCA projection; a full-covariance ``GaussianMixture(K, random_state)`` fitted on Z in
    float64 gives posteriors P (N x K); then LEEP: J[y, k] = (1/N) sum_{i: y_i = y} P[i, k],
    P(y|k) = J[y, k] / sum_y J[y, k] (components with zero mass skipped),
    ``NLEEP = (1/N) sum_i log sum_k P[i, k] P(y_i | k)``.

    Row order: the mixture's k-means++ start draws rows by index, so the published score depends
    on the row order. Here the rows are first put in a canonical order (``_row_order``: sorted by
    two fixed projections of their contents, then by label), so the score is a function of the
    rows' contents and the seed only: permuting the rows gives bitwise the same value (BAD_INPUTS.md
    row 9). It equals the published algorithm fed the rows in that canonical order.
    ``row_order="given"``: no canonical order; the published algorithm runs on the rows in the order given,
    reproducing the published implementation's number for that order (and so depending on it). Not for the
    streaming state (``NLEEPStream`` raises).

    Memory: the N x K posteriors (sklearn's EM); LEEP runs over blocks of whole classes (O(4096 K)), with
    no C x K joint matrix.

    Robustness: the published code casts features to float32 and then often fails ("ill-defined
    empirical covariance"); here the fit is always float64, and if it still fails the covariance
    regulariser is raised from scikit-learn's 1e-6 to 1e-5, 1e-4, 1e-3 with a UserWarning naming the value used.
    """
    require_task("nleep", task)  # classification only: its definition needs classes
    check_options(components, var_ratio)
    given = check_row_order(row_order) == "given"
    m, lab, dev, _ = prepare(features, labels, nan_policy=nan_policy, device=device, what="nleep",
                             cost=lambda m, lab: _gram.pass_cost(m, lab.n_classes), fixed_state_must_fit=True)
    k = resolve_components(components, lab.n_classes, m.n, stacklevel=2)
    codes = lab.codes
    order = None if given else canonical_order(m, codes)
    if order is not None:
        m, codes = m.take(order), codes[order]
    if dev == "reference":
        from transferlab.reference.nleep import nleep as oracle

        return oracle(m.to_float64_host(), codes, n_components=k, var_ratio=var_ratio,
                      random_state=random_state)
    mean, comps, _ = _gram.pca(m, var_ratio=float(var_ratio))  # solved where the bank is (m.device)
    Z = _gram.project(m, comps, -(comps @ mean))
    return nleep_of_reduced(Z, codes, lab.n_classes, k, random_state)


def nleep_of_reduced(Z: np.ndarray, codes: np.ndarray, n_classes: int, k: int, random_state) -> float:
    """NLEEP of the PCA-reduced rows Z (in canonical order) with their label codes."""
    P = fit_posteriors(Z, k, random_state)
    return leep_from_posteriors(P, codes, n_classes)


def check_options(components, var_ratio) -> None:
    if var_ratio is None or not 0.0 < float(var_ratio) < 1.0:
        raise ValueError(f"var_ratio must be in (0, 1), got {var_ratio!r}")
    n_components(components, 2, 2)  # the rule's own checks (bad string, int < 1)


def resolve_components(components, n_classes: int, n: int, stacklevel: int = 2) -> int:
    """K for N rows of C classes, with the 5C fallback (a UserWarning) and the K > N error."""
    k = n_components(components, n_classes, n)
    if k > n and isinstance(components, str) and components == "5c":
        fallback = max(2, n // 10)
        warnings.warn(f"NLEEP: the 5C rule asks for K={k} mixture components but there are only n_samples={n}; "
                      f"fitting K={fallback} (N // 10) instead", UserWarning, stacklevel=stacklevel + 1)
        k = fallback
    if k > n:
        raise ValueError(f"NLEEP fits K={k} mixture components and needs at least {k} samples, got n_samples={n}; "
                         "pass components='ratio' or a smaller int")
    return k


def n_components(rule, n_classes: int, n: int) -> int:
    if isinstance(rule, (int, np.integer)) and not isinstance(rule, bool):
        if rule < 1:
            raise ValueError(f"components must be >= 1, got {rule}")
        return int(rule)
    if rule == "5c":
        return 5 * n_classes
    if rule == "ratio":
        return max(1, int(max(min(n_classes, 0.2 * n), 0.1 * n)))
    raise ValueError(f"components must be one of {RULES} or an int, got {rule!r}")


def fit_posteriors(Z: np.ndarray, k: int, random_state) -> np.ndarray:
    """Posteriors of a float64 full-covariance GaussianMixture, raising reg_covar only if the fit fails."""
    from sklearn.mixture import GaussianMixture

    err = None
    for i, reg in enumerate(_REG_COVAR_RETRIES):
        try:
            with cpu_threads.blas_single_threaded():  # the same bits alone or beside other threads
                gmm = GaussianMixture(n_components=k, covariance_type="full", reg_covar=reg,
                                      random_state=random_state).fit(Z)
        except ValueError as e:  # "Fitting the mixture model failed because some components have ill-defined ..."
            err = e
            continue
        if i:
            warnings.warn(f"NLEEP: the Gaussian mixture fit failed with reg_covar <= {_REG_COVAR_RETRIES[i - 1]:g}"
                          f" and succeeded with reg_covar={reg:g}", UserWarning, stacklevel=4)
        with cpu_threads.blas_single_threaded():
            return gmm.predict_proba(Z)
    raise ValueError(f"NLEEP: the Gaussian mixture fit failed even with reg_covar={_REG_COVAR_RETRIES[-1]:g}: {err}")


def leep_from_posteriors(P: np.ndarray, codes: np.ndarray, n_classes: int, block_rows: int = 1 << 12) -> float:
    """LEEP of labels given (N, K) posteriors; zero-mass components carry no weight.

    Class by class (rows sorted by label, blocks of whole classes of about ``block_rows`` rows), so
    the working memory is O(block_rows K), never a C x K joint: J[c] = sum of class c's rows / N,
    eep_i = sum_k P[i, k] J[y_i, k] / p(k). Every class is non-empty (labels are remapped).
    """
    n = P.shape[0]
    pz = P.sum(axis=0) / n
    live = pz > 0
    if not live.all():
        P = P[:, live]
        pz = pz[live]
    order = np.argsort(codes, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=n_classes))]
    log_eep = 0.0
    c0 = 0
    while c0 < n_classes:
        c1 = max(c0 + 1, int(np.searchsorted(bounds, bounds[c0] + block_rows, side="right")) - 1)
        c1 = min(c1, n_classes)
        rows = order[bounds[c0] : bounds[c1]]
        Pc = P[rows]
        starts = bounds[c0:c1] - bounds[c0]
        J = np.add.reduceat(Pc, starts, axis=0) / n  # (classes in block) x K
        local = np.repeat(np.arange(c1 - c0), np.diff(bounds[c0 : c1 + 1]))
        eep = np.einsum("ik,ik->i", Pc, J[local] / pz)
        log_eep += float(np.sum(np.log(eep)))
        c0 = c1
    return log_eep / n
