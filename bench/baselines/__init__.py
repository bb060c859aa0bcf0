"""Faithful re-implementations of the published score algorithms (for parity tests and benchmarks).

Written from the scores' definitions (the docstrings of transferlab/scores/) and the papers' descriptions of their released code; each module
keeps the published algorithm's structure and costs (explicit one-hot columns, per-class Python
loops, SVDs) so that timings compare against what users of those codes actually run.
"""
