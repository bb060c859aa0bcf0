"""SFDA: self-challenging Fisher discriminant analysis (Shao et al. 2022)."""
from __future__ import annotations

from ._registry import register


@register("sfda")
def sfda(features, labels, *, a=5.0, log=False, device="auto"):
    """SFDA transferability score."""
    raise NotImplementedError
