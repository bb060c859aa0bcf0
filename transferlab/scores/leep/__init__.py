"""LEEP (Nguyen et al. 2020): the one-shot score (``one_shot``) and its streaming state (``stream``),
registered as one entry each (``transferlab.scores.registry.ScoreSpec``)."""
from transferlab.reference.leep import leep as _reference_leep
from transferlab.scores.registry import ScoreSpec, register
from transferlab.scores.leep.one_shot import leep
from transferlab.scores.leep.stream import LeepStream

register(ScoreSpec("leep", leep, inputs="probs", stream=LeepStream, reference=_reference_leep))

__all__ = ["leep", "LeepStream"]
