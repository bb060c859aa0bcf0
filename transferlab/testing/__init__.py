"""Checks any registered score must pass, built-in or third-party: ``check_score`` (the bad-input
table, every row) and ``check_stream`` (the streaming protocol against the one-shot score).

    from transferlab.testing import check_score, check_stream
    check_score("my_score")
    check_stream("my_score", rtol=1e-12)
"""
from transferlab.testing.score_checks import (CHECKS, EXEMPTIONS, CheckResult, ScoreCheckError, ScoreReport, check_score,
                                              input_digest, valid_inputs)
from transferlab.testing.stream_checks import STREAM_CHECKS, check_stream

__all__ = ["CheckResult", "ScoreReport", "ScoreCheckError", "check_score", "check_stream", "CHECKS", "STREAM_CHECKS",
           "EXEMPTIONS", "input_digest", "valid_inputs"]
