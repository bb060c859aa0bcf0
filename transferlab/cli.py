"""The ``transferlab`` command line (also ``python -m transferlab``).

    transferlab extract --model all --task mnist-high-5 --out banks     # feature banks (transferlab._cli_pool)
    transferlab score banks -o scores.csv                               # every score, timed
    transferlab score features.npy --labels labels.npy                  # your own arrays (.npy/.npz/.csv)
    transferlab rank a.npy b.npy --labels labels.npy                    # score, then the fine-tune order
    transferlab rank --scores scores.csv [--pool zoo]                   # fine-tune order per strategy
    transferlab race a.npy b.npy c.npy --labels labels.npy              # the best model without every row (_cli_race)
    transferlab evaluate --scores S.csv --finetune F.csv [--budget 1 2 3] [--plot DIR] [--pool cards.json]
    transferlab demo                                                    # all of it on the embedded zoo
    transferlab info [--banks DIR]

Each subcommand is a ``_cmd_<name>(args) -> int`` registered in ``_build_parser``; add new ones there.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from transferlab._cli_pool import add_parsers, cmd_info_banks
from transferlab._cli_race import add_race_parser
from transferlab._cli_shared import check_output, resolve_finetune, resolve_pool

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    from transferlab._version import __version__

    parser = argparse.ArgumentParser(
        prog="transferlab",
        description="Which pre-trained models are worth fine-tuning on your task? transferlab extracts their "
                    "features, scores them with cheap transferability proxies, ranks them, and measures the regret "
                    "of each ranking against real fine-tuning results. Start with 'transferlab demo'.")
    parser.add_argument("--version", action="version", version=f"transferlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    ev = sub.add_parser("evaluate", help="correlations, regret, budget to zero regret of scores vs fine-tuning",
                        description="Evaluate transferability scores and selection strategies against "
                                    "fine-tune accuracies (long or wide CSV files).")
    ev.add_argument("--scores", required=True,
                    help="score CSV: long 'dataset,model,score,value' or wide 'dataset,model,<score>...'; "
                         "'published:NAME' for a shipped table (e.g. published:modelspider_baseline_scores)")
    ev.add_argument("--finetune", required=True,
                    help="fine-tune CSV: wide 'model,<dataset>...' or long 'dataset,model,accuracy'; "
                         "'zoo' for the shipped ground truth of the embedded zoo; 'published:NAME' for a shipped "
                         "table (published:tllib_finetune, published:sfda_finetune_group1_supervised, ...)")
    ev.add_argument("--budget", type=int, nargs="+", default=[1, 2, 3], metavar="B",
                    help="budgets B for regret@B (default: 1 2 3)")
    ev.add_argument("--pool", default="auto",
                    help="model cards (.json or .csv) for the task-agnostic and hybrid strategies; default: the "
                         "shipped ImageNet CNN cards when they cover every model; 'zoo' for the zoo's cards; "
                         "'none' to leave them out")
    ev.add_argument("--kind", choices=["relative", "absolute", "log_odds"], default="relative",
                    help="regret kind (default: relative)")
    ev.add_argument("--ties", choices=["expected", "name"], default="expected",
                    help="score ties: expected value over random tie-breaks (default) or broken by model name")
    ev.add_argument("--intersect", action="store_true",
                    help="evaluate on the models common to scores and fine-tune table instead of failing")
    ev.add_argument("--omit-nan", action="store_true", help="drop NaN scores instead of failing")
    ev.add_argument("--summary", action="store_true", help="print only the summary table")
    ev.add_argument("--plot", metavar="DIR", help="write the figures (PNG) into DIR (needs matplotlib)")
    ev.add_argument("--quiet", action="store_true",
                    help="no progress bar while the figures are drawn (it shows on a terminal only anyway)")
    ev.add_argument("--csv", metavar="PATH", help="also write every figure as long CSV")
    ev.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    ev.set_defaults(func=_cmd_evaluate)

    info = sub.add_parser("info", help="build configuration, available scores, zoo models and tasks; --banks lists banks",
                          description="Show what this installation can do: the compiled CPU module and its SIMD "
                                      "level, the CUDA module and visible devices, thread count, the registered "
                                      "scores, and the embedded zoo's models and tasks (marking tasks whose data "
                                      "is not installed). With --banks DIR, also list every feature bank under DIR "
                                      "with its size and whether it is complete.")
    info.add_argument("--banks", metavar="DIR", help="also list the feature banks under DIR (complete or not)")
    info.set_defaults(func=_cmd_info)
    add_parsers(sub)
    add_race_parser(sub)
    return parser


def _cmd_evaluate(args) -> int:
    from transferlab.evaluate import Report, cost_markdown, cost_quality, plot_cost_quality

    for flag, path in (("--csv", args.csv), ("--json", args.json)):
        check_output(flag, path)
    check_output("--plot", args.plot, directory=True)
    from transferlab.evaluate._published import resolve_published

    args.scores, args.finetune = resolve_published(args.scores), resolve_published(args.finetune)
    pool = resolve_pool(args.pool)
    report = Report.from_tables(args.scores, resolve_finetune(args.finetune), budgets=args.budget, pool=pool,
                                kind=args.kind,
                                on_mismatch="intersect" if args.intersect else "raise",
                                nan_policy="omit" if args.omit_nan else "raise", ties=args.ties)
    sys.stdout.write(report.to_markdown(summary_only=args.summary))
    cost = None
    if _has_seconds(args.scores):  # written by 'transferlab score': show each score's cost beside its regret
        cost = cost_quality(args.scores, report)
        sys.stdout.write("\n## cost vs quality (wall-clock per bank beside regret)\n\n" + cost_markdown(cost) + "\n")
    if args.csv:
        report.to_csv(args.csv)
    if args.json:
        report.to_json(args.json)
    if args.plot:
        paths = report.plot(args.plot, progress=not args.quiet)
        if cost is not None:
            paths.append(plot_cost_quality(cost, os.path.join(args.plot, "cost_quality.png"), report=report))
        sys.stdout.write(f"wrote {len(paths)} figures to {args.plot}\n")
    return 0


def _has_seconds(path) -> bool:
    try:
        with open(path, encoding="utf-8-sig") as f:
            return "seconds" in [h.strip().lower() for h in f.readline().split(",")]
    except OSError:
        return False


def _cmd_info(args) -> int:
    from transferlab import available, show_config
    from transferlab.zoo import MODELS, TASKS, available_tasks

    show_config()
    have = set(available_tasks())
    sys.stdout.write(f"scores              : {', '.join(available())}\n"
                     f"  task=regression   : {', '.join(available(task='regression'))}\n"
                     f"  task=multilabel   : {', '.join(available(task='multilabel'))}\n"
                     f"zoo models          : {', '.join(MODELS)}\n"
                     f"zoo tasks           : {', '.join(t if t in have else t + ' (data not installed)' for t in TASKS)}\n")
    if args.banks:
        cmd_info_banks(args.banks)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input or usage)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, ImportError, OSError, RuntimeError) as e:
        sys.stderr.write(f"transferlab {args.command}: error: {_in_cli_terms(_one_line(e))}\n")
        return 2


def _one_line(e: BaseException) -> str:
    """An error as one line: a file-system error as "what: which file" (not errno and a traceback)."""
    if isinstance(e, OSError) and e.filename is not None:
        text = f"{e.strerror or type(e).__name__}: {e.filename}"
        if isinstance(e, FileExistsError):
            text += " (give a directory that does not exist yet or is a directory)"
    else:
        text = str(e) or type(e).__name__
    return " ".join(text.split())


# The library's messages name keyword arguments; at the command line the same advice is a flag.
_CLI_TERMS = (
    ("pass nan_policy='omit' to drop them", "pass --omit-nan to drop them"),
    ("nan_policy='omit'", "--omit-nan"),
    ("pass on_mismatch='intersect'", "pass --intersect"),
    ("on_mismatch='intersect'", "--intersect"),
    ("pass device='cpu' (or 'auto')", "pass --device cpu (or auto)"),
    ("pass device='cpu'", "pass --device cpu"),
    ("device='cpu'", "--device cpu"),
    ("pass task='regression'", "pass --task regression"),
    ("task='regression'", "--task regression"),
    ("task='multilabel'", "--task multilabel"),
    ("task='classification'", "--task classification"),
)


def _in_cli_terms(text: str) -> str:
    for api, flag in _CLI_TERMS:
        text = text.replace(api, flag)
    return text
