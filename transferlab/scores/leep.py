"""LEEP: log expected empirical prediction (Nguyen et al. 2020)."""
from __future__ import annotations

from ._registry import register


@register("leep", inputs="probs")
def leep(source_probs, labels, *, from_logits=False, device="auto"):
    """LEEP transferability score."""
    raise NotImplementedError
