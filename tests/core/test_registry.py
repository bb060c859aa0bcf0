"""The score registry: names, dispatch by name, third-party registration."""
import numpy as np
import pytest

import transferlab
from transferlab import scores

SEED_SCORES = {"knn_loo", "leep", "sfda", "linear_probe"}


def test_seed_scores_are_registered_and_exported():
    assert SEED_SCORES <= set(scores.available())
    assert transferlab.available() == scores.available()
    for name in SEED_SCORES:
        assert getattr(transferlab, name) is scores.get(name).func
        assert getattr(scores, name) is scores.get(name).func
    assert scores.get("leep").inputs == "probs"
    assert scores.get("sfda").inputs == "features"


def test_third_party_score_round_trip():
    def centroid_gap(features, labels):
        """Distance between the two class means (a toy third-party score)."""
        X = np.asarray(features, dtype=np.float64)
        y = np.asarray(labels)
        return float(np.linalg.norm(X[y == 0].mean(0) - X[y == 1].mean(0)))

    scores.register("centroid_gap")(centroid_gap)
    try:
        X = np.array([[0.0], [0.0], [3.0], [3.0]])
        assert transferlab.score("centroid_gap", X, [0, 0, 1, 1]) == 3.0
        assert scores.get("centroid_gap").description.startswith("Distance between")
        with pytest.raises(ValueError, match="already registered"):
            scores.register("centroid_gap")(centroid_gap)
    finally:
        scores.unregister("centroid_gap")
    assert "centroid_gap" not in scores.available()


def test_unknown_score_lists_the_available_ones():
    with pytest.raises(ValueError, match="unknown score 'nope'.*knn_loo"):
        transferlab.score("nope", np.ones((2, 2)), [0, 1])


def test_register_validates_its_arguments():
    with pytest.raises(ValueError, match="inputs"):
        scores.register("x", inputs="images")
    with pytest.raises(ValueError, match="non-empty"):
        scores.register("")
