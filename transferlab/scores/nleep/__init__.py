"""NLEEP (Li et al. 2021): the one-shot score (``one_shot``) and its streaming state (``stream``),
registered as one entry each (``transferlab.scores.registry.ScoreSpec``)."""
from transferlab.reference.nleep import nleep as _reference_nleep
from transferlab.scores.registry import ScoreSpec, register
from transferlab.scores.nleep.one_shot import nleep
from transferlab.scores.nleep.stream import NLEEPStream

register(ScoreSpec("nleep", nleep, stream=NLEEPStream, reference=_reference_nleep))

__all__ = ["nleep", "NLEEPStream"]
