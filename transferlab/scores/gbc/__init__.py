"""GBC (Pandy et al. 2022): the one-shot score (``one_shot``) and its streaming state (``stream``),
registered as one entry each (``transferlab.scores.registry.ScoreSpec``)."""
from transferlab.reference.gbc import gbc as _reference_gbc
from transferlab.scores.registry import ScoreSpec, register
from transferlab.scores.gbc.one_shot import gbc
from transferlab.scores.gbc.stream import GBCStream

register(ScoreSpec("gbc", gbc, stream=GBCStream, reference=_reference_gbc))

__all__ = ["gbc", "GBCStream"]
