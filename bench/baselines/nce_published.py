"""NCE (Tran et al. 2019) as commonly published: a dense joint table filled sample by sample with
1/N increments, p(y|z) with +1e-20 inside the logarithm, over the z with p(z) != 0."""
from __future__ import annotations

import numpy as np


def nce_published(source_probs, labels) -> float:
    source_label = np.argmax(np.asarray(source_probs), axis=1)
    target_label = np.asarray(labels)
    ct, cs, n = int(target_label.max() + 1), int(source_label.max() + 1), len(source_label)
    joint = np.zeros((ct, cs), dtype=float)
    for s, t in zip(source_label, target_label):
        joint[int(t), int(s)] += 1.0 / n
    p_z = joint.sum(axis=0, keepdims=True)
    mask = p_z.reshape(-1) != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        p_t_given_s = (joint / p_z).T
    p_t_given_s = p_t_given_s[mask] + 1e-20
    h = np.sum(-p_t_given_s * np.log(p_t_given_s), axis=1, keepdims=True)
    return float(-np.sum(h * p_z.reshape((-1, 1))[mask]))
