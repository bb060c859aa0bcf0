"""TransRate (Huang et al. 2022): the one-shot score (``one_shot``) and its streaming state (``stream``),
registered as one entry each (``transferlab.scores.registry.ScoreSpec``)."""
from transferlab.reference.transrate import transrate as _reference_transrate
from transferlab.scores.registry import ScoreSpec, register
from transferlab.scores.transrate.one_shot import transrate
from transferlab.scores.transrate.stream import TransRateStream

register(ScoreSpec("transrate", transrate, stream=TransRateStream, reference=_reference_transrate))

__all__ = ["transrate", "TransRateStream"]
