"""SFDA (Shao et al. 2022): the one-shot score (``one_shot``) and its streaming state (``stream``),
registered as one entry each (``transferlab.scores.registry.ScoreSpec``)."""
from transferlab.reference.sfda import sfda as _reference_sfda
from transferlab.scores.registry import ScoreSpec, register
from transferlab.scores.sfda.one_shot import sfda
from transferlab.scores.sfda.stream import SFDAStream

register(ScoreSpec("sfda", sfda, stream=SFDAStream, reference=_reference_sfda))

__all__ = ["sfda", "SFDAStream"]
