"""Expert selection (Puigcerver et al.): kNN proxy, label matching by KL divergence, random."""
import math

import numpy as np
import pytest

from conftest import digest
from transferlab.select import select_expert


def test_knn_picks_highest_proxy_ties_by_name():
    sel = select_expert("knn", knn={"plant": 0.8, "animal": 0.9, "food": 0.9})
    assert sel.models == ("animal", "food", "plant") and set(sel.rules) == {"expert:knn"}


def test_label_matching_by_hand():
    # mean prediction q = (0.5, 0.5, 0); KL(q || p) = sum_z q_z log(q_z / p_z)
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    priors = {"e1": np.array([0.5, 0.25, 0.25]), "e2": np.array([0.4, 0.4, 0.2]), "e3": [1.0, 0.0, 0.0],
              "e4": np.array([40.0, 40.0, 20.0])}  # counts are normalised (same as e2)
    before = digest(probs, *[np.asarray(p) for p in priors.values()])
    sel = select_expert("label_matching", target_probs=probs, priors=priors)
    kl1 = 0.5 * math.log(0.5 / 0.5) + 0.5 * math.log(0.5 / 0.25)
    kl2 = 2 * 0.5 * math.log(0.5 / 0.4)
    assert sel.models == ("e2", "e4", "e1", "e3")
    np.testing.assert_allclose(sel.values, [kl2, kl2, kl1, math.inf])
    assert digest(probs, *[np.asarray(p) for p in priors.values()]) == before
    # logits give the same answer as their softmax
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]))
    a = select_expert("label_matching", target_probs=logits, priors=priors, from_logits=True)
    b = select_expert("label_matching", target_probs=np.exp(logits), priors=priors)
    assert a.models == b.models
    # smoothing keeps a zero prior finite
    s = select_expert("label_matching", target_probs=probs, priors=priors, smoothing=1e-3)
    assert np.isfinite(s.values).all()


def test_label_matching_bad_input():
    priors = {"e1": [0.5, 0.5], "e2": [0.9, 0.1]}
    with pytest.raises(ValueError, match="from_logits=True"):
        select_expert("label_matching", target_probs=np.array([[2.0, -1.0]]), priors=priors)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        select_expert("label_matching", target_probs=np.array([[0.5, 0.5]]), priors={"e1": [1, 0, 0], "e2": [1, 1]})
    with pytest.raises(ValueError, match="NaN/inf"):
        select_expert("label_matching", target_probs=np.array([[np.nan, 0.5]]), priors=priors)
    with pytest.raises(ValueError, match="2-D"):
        select_expert("label_matching", target_probs=np.array([0.5, 0.5]), priors=priors)
    with pytest.raises(ValueError, match="at least 2 models"):
        select_expert("label_matching", target_probs=np.array([[0.5, 0.5]]), priors={"e1": [1, 1]})


def test_random_and_method_errors():
    sel = select_expert("random", experts=["a", "b", "c"], seed=1)
    assert sorted(sel.models) == ["a", "b", "c"] and set(sel.rules) == {"expert:random"}
    assert select_expert("random", experts=["c", "b", "a"], seed=1).models == sel.models
    with pytest.raises(ValueError, match="method must be one of"):
        select_expert("domain")
    with pytest.raises(ValueError, match="needs knn"):
        select_expert("knn")
