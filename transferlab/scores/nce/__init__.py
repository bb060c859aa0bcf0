"""NCE (Tran et al. 2019): the one-shot score (``one_shot``) and its streaming state (``stream``),
registered as one entry each (``transferlab.scores.registry.ScoreSpec``)."""
from transferlab.reference.nce import nce as _reference_nce
from transferlab.scores.registry import ScoreSpec, register
from transferlab.scores.nce.one_shot import nce
from transferlab.scores.nce.stream import NceStream

register(ScoreSpec("nce", nce, inputs="probs", stream=NceStream, reference=_reference_nce))

__all__ = ["nce", "NceStream"]
