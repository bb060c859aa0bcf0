"""LogME (You et al. 2021): the one-shot score (``one_shot``) and its streaming state (``stream``),
registered as one entry each (``transferlab.scores.registry.ScoreSpec``)."""
from transferlab.reference.logme import logme as _reference_logme
from transferlab.scores.registry import ScoreSpec, register
from transferlab.scores.logme.one_shot import logme
from transferlab.scores.logme.stream import LogMEStream

register(ScoreSpec("logme", logme, tasks=("classification", "regression", "multilabel"), stream=LogMEStream,
                   reference=_reference_logme))

__all__ = ["logme", "LogMEStream"]
