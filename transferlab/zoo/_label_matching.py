"""Label matching's target side on the zoo: the generic model's predictions over the 20 upstream labels.

Beside ``_experts`` (which ships the experts and their label priors, JSON only) because it loads a model
through ``_models``, which imports ``_experts``: kept here, the two stay free of an import cycle."""
from __future__ import annotations

from transferlab.zoo._experts import GENERIC_MODEL, manifest
from transferlab.zoo._models import load_model


def upstream_label_probs(images, generic: str = GENERIC_MODEL, batch_size: int = 1000):
    """``(n, 20)`` float64 softmax predictions of the generic model over the 20 upstream labels on ``images``
    (N x H x W or N x C x H x W, uint8 or float in [0, 1]): label matching's ``target_probs``. Needs torch."""
    import numpy as np
    import torch

    if generic not in manifest() or int(manifest()[generic]["n_classes"]) != 20:
        raise ValueError(f"generic must be a zoo model over all 20 upstream labels, got {generic!r}")
    m = load_model(generic)
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            out.append(torch.softmax(m.module(m.preprocess(images[i:i + batch_size])).double(), dim=1).numpy())
    return np.concatenate(out)
