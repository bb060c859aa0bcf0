"""Leave-one-out k-NN accuracy (Renggli et al. 2022): the one-shot score (``one_shot``), the
out-of-core query path and its streaming state (``stream``), registered as one entry."""
from transferlab.reference.knn import knn_loo as _reference_knn_loo
from transferlab.scores.knn.one_shot import KnnLooResult, knn_loo
from transferlab.scores.knn.stream import KnnLooStream
from transferlab.scores.registry import ScoreSpec, register

register(ScoreSpec("knn_loo", knn_loo, stream=KnnLooStream, reference=_reference_knn_loo))

__all__ = ["knn_loo", "KnnLooResult", "KnnLooStream"]
