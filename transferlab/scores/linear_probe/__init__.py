"""the linear-probe accuracy: the one-shot score (``one_shot``) and its streaming state (``stream``),
registered as one entry each (``transferlab.scores.registry.ScoreSpec``)."""
from transferlab.reference.linear_probe import fit_and_score as _reference_fit_and_score
from transferlab.scores.registry import ScoreSpec, register
from transferlab.scores.linear_probe.one_shot import LinearProbeResult, linear_probe
from transferlab.scores.linear_probe.stream import LinearProbeStream

register(ScoreSpec("linear_probe", linear_probe, tasks=("classification", "regression", "multilabel"),
                   stream=LinearProbeStream, reference=_reference_fit_and_score))

__all__ = ["linear_probe", "LinearProbeResult", "LinearProbeStream"]
