"""H-score (Bao et al. 2019) and its regularised form (Ibrahim et al. 2022): the one-shot score (``one_shot``) and its streaming state (``stream``),
registered as one entry each (``transferlab.scores.registry.ScoreSpec``)."""
from transferlab.reference.hscore import hscore as _reference_hscore
from transferlab.reference.hscore import reg_hscore as _reference_reg_hscore
from transferlab.scores.registry import ScoreSpec, register
from transferlab.scores.hscore.one_shot import hscore, reg_hscore
from transferlab.scores.hscore.stream import HScoreStream, RegHScoreStream

register(ScoreSpec("hscore", hscore, stream=HScoreStream, reference=_reference_hscore))
register(ScoreSpec("reg_hscore", reg_hscore, stream=RegHScoreStream, reference=_reference_reg_hscore))

__all__ = ["hscore", "reg_hscore", "HScoreStream", "RegHScoreStream"]
