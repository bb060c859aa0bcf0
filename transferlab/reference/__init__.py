"""Float64 numpy oracles written from SCORES.md: slow, simple, exact. They are the ground truth of
the tests and double as ``device="reference"``. Each takes already-validated host arrays:
``X`` (N x D float64) or ``P`` (N x Z float64) and integer codes ``y`` in ``0..C-1``."""
