"""The authors' published SFDA algorithm (Shao et al. 2022, their ``SFDA_Score``), restated in
numpy for the parity test, as SCORES.md describes it (steps 1-7).

Kept deliberately close to the published structure: ``np.cov(bias=1)`` per class weighted by the
priors, the shrunk covariance helper, ``iterative_A`` (three power steps from the row sums),
``scipy.linalg.eigh(Sb, shrunk_Sw)``, ``coef = means V V^T``, softmax, the second softmax
``exp(p) / sum exp(p)``, ConfMix with the mean of the other classes' means, and a second fit that
reuses the first fit's shrinkage. Differences, on purpose: the input is copied (the published code
writes ConfMix into the caller's array), nothing is printed, everything is float64.
"""
from __future__ import annotations

import numpy as np
from scipy import linalg


def _cov(X, shrinkage=-1):
    emp_cov = np.cov(np.asarray(X).T, bias=1)
    if shrinkage < 0:
        return emp_cov
    n_features = emp_cov.shape[0]
    mu = np.trace(emp_cov) / n_features
    shrunk_cov = (1.0 - shrinkage) * emp_cov
    shrunk_cov.flat[:: n_features + 1] += shrinkage * mu
    return shrunk_cov


def _softmax(X):
    X = np.copy(X)
    X -= np.max(X, axis=1).reshape((-1, 1))
    np.exp(X, X)
    X /= np.sum(X, axis=1).reshape((-1, 1))
    return X


def _class_means(X, y):
    classes, y = np.unique(y, return_inverse=True)
    cnt = np.bincount(y)
    means = np.zeros(shape=(len(classes), X.shape[1]))
    np.add.at(means, y, X)
    means /= cnt[:, None]
    means_ = np.zeros(shape=(len(classes), X.shape[1]))
    for i in range(len(classes)):
        means_[i] = (np.sum(means, axis=0) - means[i]) / (len(classes) - 1)
    return means, means_


def _iterative_A(A, max_iterations=3):
    x = A.sum(axis=1)
    for _ in range(max_iterations):
        temp = np.dot(A, x)
        y = temp / np.linalg.norm(temp, 2)
        temp = np.dot(A, y)
        x = temp / np.linalg.norm(temp, 2)
    return np.dot(np.dot(x.T, A), y)


class _SFDA:
    def __init__(self, shrinkage=None, a=5.0):
        self.shrinkage = shrinkage
        self.a = a

    def fit(self, X, y):
        classes, y_t = np.unique(y, return_inverse=True)
        self.priors_ = np.bincount(y_t) / float(len(y))
        means = np.zeros(shape=(len(classes), X.shape[1]))
        np.add.at(means, y_t, X)
        means /= np.bincount(y_t)[:, None]
        self.means_ = means
        cov = np.zeros(shape=(X.shape[1], X.shape[1]))
        for idx, group in enumerate(classes):
            Xg = X[y == group, :]
            cov += self.priors_[idx] * np.atleast_2d(_cov(Xg))
        Sw = cov
        if self.shrinkage is None:
            largest_evals_w = _iterative_A(Sw, max_iterations=3)
            self.shrinkage = max(np.exp(-self.a * largest_evals_w), 1e-10)
        St = _cov(X, shrinkage=self.shrinkage)
        n_features = Sw.shape[0]
        mu = np.trace(Sw) / n_features
        shrunk_Sw = (1.0 - self.shrinkage) * Sw
        shrunk_Sw.flat[:: n_features + 1] += self.shrinkage * mu
        Sb = St - shrunk_Sw
        evals, evecs = linalg.eigh(Sb, shrunk_Sw)
        evecs = evecs[:, np.argsort(evals)[::-1]]
        self.coef_ = np.dot(self.means_, evecs).dot(evecs.T)
        self.intercept_ = -0.5 * np.diag(np.dot(self.means_, self.coef_.T)) + np.log(self.priors_)
        return self

    def predict_proba(self, X):
        return _softmax(np.dot(X, self.coef_.T) + self.intercept_)


def sfda_score(X, y, a=5.0):
    """The published SFDA_Score on a float64 copy of X; y are integer codes 0..C-1."""
    X = np.array(X, dtype=np.float64)
    y = np.asarray(y)
    n = len(y)
    num_classes = len(np.unique(y))
    first = _SFDA(a=a)
    prob = first.fit(X, y).predict_proba(X)
    prob = np.exp(prob) / np.exp(prob).sum(axis=1, keepdims=True)
    means, means_ = _class_means(X, y)
    for y_ in range(num_classes):
        indices = np.where(y == y_)[0]
        y_prob = np.take(prob, indices, axis=0)[:, y_]
        X[indices] = y_prob.reshape(len(y_prob), 1) * X[indices] + (1 - y_prob.reshape(len(y_prob), 1)) * means_[y_]
    second = _SFDA(shrinkage=first.shrinkage, a=a)
    prob = second.fit(X, y).predict_proba(X)
    return np.sum(prob[np.arange(n), y]) / n
