"""select.race against the exhaustive knn_loo over a pool, side by side in one run.

    python bench/bench_race.py                                   # 12 models, N=100000, D=64, 5 seeded races
    python bench/bench_race.py --n 20000 --d 32 --repeats 3      # quick
    python bench/bench_race.py --zoo animal-10 --zoo-n 3000      # also the zoo's real banks (needs torch + zoo)

Synthetic pool: ``--models`` float32 banks of the same N rows and C=10 labels, model j = class centres times
a separation s_j plus unit noise: one clearly best (s=1.0), two close seconds (s=0.80, 0.79), the rest
spread below. Every model's exhaustive knn_loo is computed first (the symmetric in-memory kernel, N^2 D / 2
per model, timed), then ``--repeats`` races with seeds 0.. each must return the exhaustive winner (or one
within --epsilon of it; the script stops otherwise) and their times are printed beside the exhaustive time as
a ratio, with the query rows each race scored (of M * N). Zoo (``--zoo TASK``): the zoo models that load here
embed ``--zoo-n`` images of the task (penultimate layer, as the zoo's ``features_and_logits``), then the same
check and timing. The D is scaled down from the issue's 768+ so that the exhaustive pass runs in minutes on
2 cores; the race's query path (``knn_loo(queries=)``, ``_C.knn_cross``) costs about 2x the symmetric
kernel per row (1.7-2.2x measured by bench/bench_knn_cross.py: a query row is N D multiply-adds, a row of the
symmetric pass N D / 2), which the ratio includes.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import transferlab as tl


def synthetic_pool(models: int, n: int, d: int, c: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    centres = rng.normal(size=(c, d)) * (3.0 / np.sqrt(d))
    rest = np.linspace(0.65, 0.2, max(models - 3, 0))
    seps = [1.0, 0.80, 0.79] + list(rest)
    banks = {f"m{j:02d}_s{s:.2f}": (centres[y] * s + rng.normal(size=(n, d))).astype(np.float32)
             for j, s in enumerate(seps[:models])}
    return banks, y


def zoo_pool(task: str, n: int):
    """{model: features} of the zoo models that load here, on n images of ``task``; and the labels."""
    import torch

    from transferlab import zoo

    x, y, _ = zoo.load_task(task, split="train", n=n, seed=0)
    banks, skipped = {}, []
    for name in zoo.MODELS:
        try:
            model = zoo.load_model(name)
        except Exception as e:  # a zoo package not installed here: say so, race the rest
            skipped.append(f"{name} ({type(e).__name__})")
            continue
        parts = []
        for s in range(0, len(x), 256):
            f, _ = model.features_and_logits(x[s : s + 256])
            parts.append(f.reshape(f.shape[0], -1).to(torch.float32).numpy())
        banks[name] = np.concatenate(parts)
    return banks, np.asarray(y), skipped


def compare(label: str, banks, y, repeats: int, epsilon: float, first_rows: int) -> None:
    t0 = time.perf_counter()
    exact = {k: tl.knn_loo(v, y) for k, v in banks.items()}
    t_ex = time.perf_counter() - t0
    best = max(exact.values())
    winner = min(k for k, v in exact.items() if v == best)
    n = len(y)
    dims = sorted({v.shape[1] for v in banks.values()})
    print(f"{label}: {len(banks)} models, N={n}, D={'/'.join(map(str, dims))}; exhaustive knn_loo "
          f"over the pool {t_ex:.1f}s, winner {winner} ({best:.5f}); "
          f"top 3: {sorted(exact.items(), key=lambda kv: -kv[1])[:3]}", flush=True)
    times = []
    for seed in range(repeats):
        res = tl.select.race(banks, y, seed=seed, epsilon=epsilon, first_rows=first_rows)
        ok = exact[res.chosen] >= best - epsilon
        print(f"  race seed {seed}: chose {res.chosen} ({'ok' if ok else 'WRONG'}), {res.seconds:.1f}s, "
              f"ratio {t_ex / res.seconds:.2f}x, rows scored {res.rows_scored} of {res.exhaustive_rows} "
              f"({100 * res.rows_scored / res.exhaustive_rows:.1f}%), exact={res.exact}", flush=True)
        if not ok:
            raise SystemExit(f"race picked {res.chosen} ({exact[res.chosen]}) but the exhaustive best is {best}")
        times.append(res.seconds)
    med = float(np.median(times))
    print(f"  {label}: race median {med:.1f}s vs exhaustive {t_ex:.1f}s: {t_ex / med:.2f}x faster "
          f"(delta=0.05, epsilon={epsilon}; every race returned the exhaustive winner or one within epsilon)",
          flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=12)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epsilon", type=float, default=0.0)
    ap.add_argument("--first-rows", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--zoo", default=None, help="a zoo task to race the zoo's real banks on (needs torch + zoo)")
    ap.add_argument("--zoo-n", type=int, default=3000)
    ap.add_argument("--skip-synthetic", action="store_true")
    args = ap.parse_args(argv)
    with tl.threads(args.threads):
        if not args.skip_synthetic:
            banks, y = synthetic_pool(args.models, args.n, args.d)
            compare("synthetic", banks, y, args.repeats, args.epsilon, args.first_rows)
        if args.zoo:
            banks, y, skipped = zoo_pool(args.zoo, args.zoo_n)
            if skipped:
                print(f"zoo: skipped (not loadable here): {', '.join(skipped)}")
            compare(f"zoo {args.zoo}", banks, y, args.repeats, args.epsilon, min(args.first_rows, len(y)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
