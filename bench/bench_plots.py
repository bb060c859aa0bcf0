"""What ``transferlab evaluate --plot`` costs over ``evaluate`` alone, on the shipped published tables (Model-Spider
scores of 10 ImageNet CNNs, tllib fine-tune accuracies: 9 scores, 8 datasets, 16 figures).

    python bench/bench_plots.py                          # this tree
    python bench/bench_plots.py --baseline /tmp/old-src  # and another source tree (e.g. a `git archive` of an
                                                         # older commit with its compiled modules), in the same run

Each run is a fresh ``python -m transferlab evaluate`` process (imports included, as a user pays them), run
``--repeats`` times, interleaved across the variants so that machine load hits them alike. Before timing it
checks that both variants print the same report and that the plot run writes its PNG files. Prints the median
wall-clock and CPU seconds (user + system of the child, which a loaded machine inflates much less than wall-clock)
of each variant and the ratios: with/without --plot per tree, and this tree/baseline with --plot.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tables(src: str):
    for sub in ("transferlab/data/published", "tests/data/published"):  # older trees kept them under tests/
        d = os.path.join(src, sub)
        if os.path.isdir(d):
            return (os.path.join(d, "modelspider_baseline_scores.csv"), os.path.join(d, "tllib_finetune.csv"))
    raise SystemExit(f"{src}: no published tables")


def _run(src: str, plot_dir):
    scores, ft = _tables(src)
    cmd = [sys.executable, "-m", "transferlab", "evaluate", "--scores", scores, "--finetune", ft]
    if plot_dir:
        cmd += ["--plot", plot_dir]
    env = dict(os.environ, PYTHONPATH=src, MPLBACKEND="Agg")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=src)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = out.stdout.split("wrote ")[0]
    return wall, cpu, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", help="another source tree to time beside this one")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    trees = [("this tree", HERE)] + ([("baseline", os.path.abspath(args.baseline))] if args.baseline else [])
    times = {(name, plot): ([], []) for name, _ in trees for plot in (False, True)}
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in trees:  # check before timing
            _, _, plain = _run(src, None)
            d = os.path.join(tmp, f"check-{len(name)}")
            _, _, with_plot = _run(src, d)
            pngs = [f for f in os.listdir(d) if f.endswith(".png")]
            assert len(pngs) >= 10, (name, pngs)
            assert plain.strip() == with_plot.strip(), f"{name}: --plot changed the printed report"
        for r in range(args.repeats):
            for name, src in trees:
                for plot in (False, True):
                    wall, cpu, _ = _run(src, os.path.join(tmp, f"r{r}-{len(name)}") if plot else None)
                    times[(name, plot)][0].append(wall)
                    times[(name, plot)][1].append(cpu)
    med = {k: (statistics.median(w), statistics.median(c)) for k, (w, c) in times.items()}
    print(f"| tree | evaluate s (wall / CPU) | evaluate --plot s (wall / CPU) | --plot / without (wall / CPU) |")
    print("|---|---:|---:|---:|")
    for name, _ in trees:
        (w0, c0), (w1, c1) = med[(name, False)], med[(name, True)]
        print(f"| {name} | {w0:.2f} / {c0:.2f} | {w1:.2f} / {c1:.2f} | {w1 / w0:.1f}x / {c1 / c0:.1f}x |")
    if args.baseline:
        (w1, c1), (wb, cb) = med[("this tree", True)], med[("baseline", True)]
        print(f"\nevaluate --plot, this tree / baseline: wall {w1 / wb:.2f}x, CPU {c1 / cb:.2f}x "
              f"(median of {args.repeats}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
