"""PARC (Bolya et al. 2021): the one-shot score (``one_shot``) and its streaming state (``stream``),
registered as one entry each (``transferlab.scores.registry.ScoreSpec``)."""
from transferlab.reference.parc import parc as _reference_parc
from transferlab.scores.registry import ScoreSpec, register
from transferlab.scores.parc.one_shot import parc
from transferlab.scores.parc.stream import PARCStream

register(ScoreSpec("parc", parc, tasks=("classification", "regression"), stream=PARCStream, reference=_reference_parc))

__all__ = ["parc", "PARCStream"]
