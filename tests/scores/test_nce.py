"""NCE vs its float64 oracle and the published algorithm; probability validation; properties."""
from __future__ import annotations

import numpy as np
import pytest

from transferlab import nce
from transferlab.reference.nce import nce as oracle

from conftest import TOL
from _score_checks import check_bad_inputs, check_label_remap_and_row_order, check_no_mutation, digits_probs, rel
from bench.baselines.nce_published import nce_published


def _probs(n=1000, z=8, c=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    L = rng.normal(size=(n, z))
    L[np.arange(n), y % z] += 1.5
    P = np.exp(L - L.max(axis=1, keepdims=True))
    return P / P.sum(axis=1, keepdims=True), y, L


@pytest.mark.parametrize("n,z,c", [(1000, 8, 5), (300, 20, 3), (5000, 4, 12)])
def test_matches_oracle_and_published(n, z, c):
    P, y, L = _probs(n, z, c, seed=n)
    got = nce(P, y)
    assert rel(got, oracle(np.argmax(P, axis=1), y)) < TOL["oracle_rel"]
    assert rel(got, nce_published(P, y)) < TOL["published_rel"]
    assert nce(L, y, from_logits=True) == got
    assert nce(P, y, device="reference") == pytest.approx(got, rel=1e-12)


def test_digits_probs():
    P, y = digits_probs()
    got = nce(P, y)
    assert rel(got, nce_published(P, y)) < TOL["published_rel"]
    assert -np.log(3) <= got <= 0


def test_hand_computed():
    # z = [0, 0, 1, 1], y = [0, 1, 1, 1]: H(Y|z=0) = log 2, H(Y|z=1) = 0 -> NCE = -0.5 log 2.
    P = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
    assert nce(P, [0, 1, 1, 1]) == pytest.approx(-0.5 * np.log(2), rel=1e-15)
    # z determines y: NCE = 0 (the maximum); unused source classes are skipped.
    P3 = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.1, 0.9, 0.0]])
    assert nce(P3, [5, 5, 7]) == 0.0


def test_validation_of_probabilities():
    P, y, L = _probs(200, 6, 3)
    with pytest.raises(ValueError, match="from_logits=True"):
        nce(L, y)
    with pytest.raises(ValueError, match="sum to 1"):
        nce(P * 2, y)
    # Swapped arguments are an error, never a number.
    with pytest.raises(ValueError):
        nce(y, P)


def test_properties_no_mutation_bad_inputs(tmp_path):
    P, y, _ = _probs(600, 6, 4, seed=3)
    check_no_mutation(nce, P, y, tmp_path)
    check_label_remap_and_row_order(nce, P, y, rtol=1e-12)
    assert nce(np.asfortranarray(P), y) == nce(P, y)
    check_bad_inputs(nce, P, y)
