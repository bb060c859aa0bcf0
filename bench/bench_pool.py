"""A pool of models of one dataset scored with sfda and logme: transferlab's batched pool
(``score_many``, ``transferlab/scores/_batched.py``) beside transferlab's own per-model loop
(``score_many(batched=False)``: each score its own call) and the published per-model loop (the authors'
algorithms: ``transferlab/reference/sfda_published.py``, ``bench/baselines/logme_published.py``).

    python bench/bench_pool.py                                   # 50 models, N=20000, D=768, C=100
    python bench/bench_pool.py --models 50 --n 10000 --d 256     # smaller (state it with the figure)

Same data and thread count (--threads, default 2; threadpoolctl for every BLAS call) for all. Each arm is
checked before it is timed: the batched values equal the per-model calls (sfda bitwise, logme to 1e-9
relative; the script stops otherwise) and the published values agree to 1e-5 (SFDA) / 1e-6 (LogME).
The published loop takes minutes per model at full size, so it runs on the first --published models
and its per-model time is multiplied by the pool size (stated in the output). Times: the batched and
per-model arms run in turn for --rounds rounds (A B A B: load spikes of a shared machine hit both), the
minimum of each; ratios = other / batched, in wall-clock and in this process's CPU seconds (less
sensitive to other jobs on a shared machine, where single wall-clock runs varied by 10x). Score sets: sfda+logme (the shared Gram pays) and sfda alone
(only the input checks are shared: the ratio says what that is worth).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import transferlab as tl  # noqa: E402
from transferlab.reference.sfda_published import sfda_score as sfda_published  # noqa: E402

from baselines.logme_published import logme_published  # noqa: E402


def make_pool(models: int, n: int, d: int, c: int, seed: int = 0):
    """``models`` float32 ReLU banks of the same n rows and labels, class separation growing with the index."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    feats = []
    for j in range(models):
        sep = (0.5 + 1.5 * j / max(models - 1, 1)) / np.sqrt(d)
        centers = (rng.normal(size=(c, d)) * sep).astype(np.float32)
        X = centers[y] + rng.normal(size=(n, d)).astype(np.float32)
        feats.append(np.maximum(X + 0.5, 0.0, dtype=np.float32))
    return feats, y


def interleaved(fns, rounds: int):
    """[(min seconds, last result)] per function, the functions run in turn (A B A B ...) so that a load
    spike of the shared machine hits every arm alike; the minimum over rounds is the least disturbed run."""
    best = [float("inf")] * len(fns)
    cpu = [float("inf")] * len(fns)
    outs = [None] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            t0, c0 = time.perf_counter(), time.process_time()
            outs[i] = fn()
            best[i] = min(best[i], time.perf_counter() - t0)
            cpu[i] = min(cpu[i], time.process_time() - c0)
    return list(zip(best, cpu, outs))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=50)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--c", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--published", type=int, default=2, help="models the published loop runs on (0: skip)")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    feats, y = make_pool(args.models, args.n, args.d, args.c)
    print(f"pool: {args.models} models, N={args.n}, D={args.d}, C={args.c}, float32, threads={args.threads}")
    with tl.threads(args.threads), threadpool_limits(args.threads):
        for scores in (["sfda", "logme"], ["sfda"]):
            (t_b, c_b, got), (t_l, c_l, loop) = interleaved(
                [lambda: tl.score_many(feats, y, scores=scores),
                 lambda: tl.score_many(feats, y, scores=scores, batched=False)], args.rounds)
            assert got["sfda"] == loop["sfda"], "batched sfda differs from the per-model calls"
            if "logme" in got:
                err = max(abs(a - b) / abs(b) for a, b in zip(got["logme"], loop["logme"]))
                assert err <= 1e-9, f"batched logme differs from the per-model calls by {err:.2e} relative"
            line = (f"{'+'.join(scores)}: batched {t_b:.2f}s, per-model loop {t_l:.2f}s "
                    f"(ratio {t_l / t_b:.2f}x; CPU seconds {c_b:.1f} / {c_l:.1f}: {c_l / c_b:.2f}x)")
            if args.published > 0:
                k = min(args.published, args.models)
                t0, c0 = time.perf_counter(), time.process_time()
                for j in range(k):
                    for s in scores:
                        v = sfda_published(feats[j], y) if s == "sfda" else logme_published(feats[j], y)
                        rtol = 1e-5 if s == "sfda" else 1e-6
                        assert abs(v - got[s][j]) <= rtol * abs(v), f"published {s} {v} vs {got[s][j]}"
                t_p = (time.perf_counter() - t0) / k * args.models
                c_p = (time.process_time() - c0) / k * args.models
                line += (f", published loop {t_p:.1f}s (ratio {t_p / t_b:.1f}x; CPU {c_p / c_b:.1f}x; timed on {k} "
                         f"model(s), x{args.models})")
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
