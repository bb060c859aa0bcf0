"""NLEEP: Gaussian-mixture LEEP (Li et al. 2021)."""
from __future__ import annotations

import warnings

import numpy as np

from . import _gram
from ._common import prepare
from ._registry import register

RULES = ("5c", "ratio")
_REG_COVAR_RETRIES = (1e-6, 1e-5, 1e-4, 1e-3)  # 1e-6: scikit-learn's default


@register("nleep")
def nleep(features, labels, *, components="5c", var_ratio=0.8, random_state=123, device="auto",
          nan_policy="raise"):
    """NLEEP: LEEP of the target labels given the posteriors of a Gaussian mixture on PCA features.

    Li et al. 2021, "Ranking Neural Checkpoints".

    Parameters
    ----------
    features : (N, D); labels : (N,).
    components : "5c" (default: K = 5 C, as published), "ratio" (K = max(min(C, 0.2 N), 0.1 N),
        the other published rule, truncated to an int) or an int K.
    var_ratio : PCA keeps the fewest leading components whose explained variance exceeds this
        fraction (0.8; scikit-learn's rule), exact (one eigensolve of the centred Gram, float64).
    random_state : seed of scikit-learn's ``GaussianMixture`` (123 reproduces the published numbers).
    device : "auto" | "cpu" | "cuda" (on the host) | "reference"; nan_policy : "raise" | "omit".

    Definition
    ----------
    Z = the PCA projection; a full-covariance ``GaussianMixture(K, random_state)`` fitted on Z in
    float64 gives posteriors P (N x K); then LEEP: J[y, k] = (1/N) sum_{i: y_i = y} P[i, k],
    P(y|k) = J[y, k] / sum_y J[y, k] (components with zero mass skipped),
    ``NLEEP = (1/N) sum_i log sum_k P[i, k] P(y_i | k)``.

    Like the published score, the result depends on the row order (the mixture's k-means++
    start draws rows by index) and on the seed.

    Robustness: the published code casts features to float32 and then often fails ("ill-defined
    empirical covariance"); here the fit is always float64, and if it still fails the covariance
    regulariser is raised from scikit-learn's 1e-6 to 1e-5, 1e-4, 1e-3 with a UserWarning naming the value used.
    """
    if var_ratio is None or not 0.0 < float(var_ratio) < 1.0:
        raise ValueError(f"var_ratio must be in (0, 1), got {var_ratio!r}")
    m, lab, dev = prepare(features, labels, nan_policy=nan_policy, device=device)
    k = n_components(components, lab.n_classes, m.n)
    if k > m.n:
        raise ValueError(f"NLEEP fits K={k} mixture components and needs at least {k} samples, got n_samples={m.n}; "
                         "pass components='ratio' or a smaller int")
    if dev == "reference":
        from ..reference.nleep import nleep as oracle

        return oracle(m.to_float64_host(), lab.codes, n_components=k, var_ratio=var_ratio,
                      random_state=random_state)
    mean, comps, _ = _gram.pca(m, var_ratio=float(var_ratio))
    Z = _gram.project(m, comps, -(comps @ mean))
    P = fit_posteriors(Z, k, random_state)
    return leep_from_posteriors(P, lab.codes, lab.n_classes)


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
            gmm = GaussianMixture(n_components=k, covariance_type="full", reg_covar=reg,
                                  random_state=random_state).fit(Z)
        except ValueError as e:  # "Fitting the mixture model failed because some components have ill-defined ..."
            err = e
            continue
        if i:
            warnings.warn(f"NLEEP: the Gaussian mixture fit failed with reg_covar <= {_REG_COVAR_RETRIES[i - 1]:g}"
                          f" and succeeded with reg_covar={reg:g}", UserWarning, stacklevel=3)
        return gmm.predict_proba(Z)
    raise ValueError(f"NLEEP: the Gaussian mixture fit failed even with reg_covar={_REG_COVAR_RETRIES[-1]:g}: {err}")


def leep_from_posteriors(P: np.ndarray, codes: np.ndarray, n_classes: int) -> float:
    """LEEP of labels given (N, K) posteriors; zero-mass components carry no weight."""
    n = P.shape[0]
    joint = np.zeros((n_classes, P.shape[1]))
    np.add.at(joint, codes, P)
    joint /= n
    pz = joint.sum(axis=0)
    live = pz > 0
    cond = joint[:, live] / pz[live]
    eep = np.einsum("ik,ik->i", P[:, live], cond[codes])
    return float(np.mean(np.log(eep)))
