"""Leave-one-out k-NN accuracy (Renggli et al. 2022), registered as one entry (``ScoreSpec``).

The package, in import order (each module imports only those above it; no cycles, no function-level
imports inside the package):

* ``rules``: the definition: option / problem checks, ``KnnLooResult``, cosine normalisation, vote and tie rules.
* ``partial``: ``Partial`` neighbour lists and their exact min-merge (``merge_partials``).
* ``out_of_core``: query rows against the bank in reference blocks (``resolve_queries``, ``plan_blocks``,
  ``neighbour_lists``, ``boundary_labels``), bitwise the in-memory kernel.
* ``credit``: per-sample credit from any path's neighbour lists (the exact tie rule, boundary rescans).
* ``targets``: regression R^2 / multilabel accuracy from neighbour lists, and the boundary-group rescan.
* ``accuracy``: ``knn_accuracy``, the train/test protocol on the cross kernel.
* ``one_shot``: ``knn_loo``, the one-shot score (in memory, CUDA, reference, or out of core).
* ``stream``: ``KnnLooStream``, the streaming state (mergeable, picklable).

``transferlab.distributed.knn_loo_sharded`` builds on ``rules``, ``partial`` and ``credit``; nothing in
this package imports ``transferlab.distributed``.
"""
from transferlab.reference.knn import knn_loo as _reference_knn_loo
from transferlab.scores.knn.one_shot import knn_loo
from transferlab.scores.knn.accuracy import knn_accuracy
from transferlab.scores.knn.rules import KnnLooResult
from transferlab.scores.knn.stream import KnnLooStream
from transferlab.scores.registry import ScoreSpec, register

register(ScoreSpec("knn_loo", knn_loo, tasks=("classification", "regression", "multilabel"), stream=KnnLooStream,
                   reference=_reference_knn_loo))

__all__ = ["knn_loo", "knn_accuracy", "KnnLooResult", "KnnLooStream"]
