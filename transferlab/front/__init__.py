"""The front door: rank your own models on your own labelled data in one call.

    import transferlab as tl
    ranking = tl.rank_models({"a": net_a, "b": net_b, "bert": "path/to/bert"}, (X, y), cache_dir="banks/")
    print(ranking)            # the ranking as a table, best first
    ranking.best              # the model to fine-tune first

:func:`rank_models` (``front/rank.py``) builds on the house: :func:`transferlab.extract` and FeatureBanks for the
features (``_features.py``; ``_models.py`` and ``_hf.py`` turn models into something extract runs, ``_data.py``
turns data into rows), :func:`transferlab.score_pool` for the scores, :func:`transferlab.select.task_aware` for
the order. :class:`Ranking` (``_result.py``) is what it returns.
"""
from transferlab.front._result import Ranking
from transferlab.front.rank import DEFAULT_SCORES, rank_models

__all__ = ["DEFAULT_SCORES", "Ranking", "rank_models"]
