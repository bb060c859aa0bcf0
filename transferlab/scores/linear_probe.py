"""Linear-probe accuracy on frozen features (Renggli et al. 2022)."""
from __future__ import annotations

from ._registry import register


@register("linear_probe")
def linear_probe(features, labels, *, protocol="lbfgs", val_fraction=0.2, seed=0, device="auto"):
    """Linear-probe validation accuracy."""
    raise NotImplementedError
