"""The ``transferlab`` command line (also ``python -m transferlab``).

    transferlab evaluate --scores S.csv --finetune F.csv [--budget 1 2 3] [--plot DIR] [--pool cards.json]
    transferlab info

Each subcommand is a ``_cmd_<name>(args) -> int`` registered in ``_build_parser``; add new ones there.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="transferlab",
                                     description="Transferability scores and model selection with regret.")
    parser.add_argument("--version", action="version", version=f"transferlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    ev = sub.add_parser("evaluate", help="correlations, regret, budget to zero regret of scores vs fine-tuning",
                        description="Evaluate transferability scores and selection strategies against "
                                    "fine-tune accuracies (long or wide CSV files).")
    ev.add_argument("--scores", required=True,
                    help="score CSV: long 'dataset,model,score,value' or wide 'dataset,model,<score>...'")
    ev.add_argument("--finetune", required=True,
                    help="fine-tune CSV: wide 'model,<dataset>...' or long 'dataset,model,accuracy'")
    ev.add_argument("--budget", type=int, nargs="+", default=[1, 2, 3], metavar="B",
                    help="budgets B for regret@B (default: 1 2 3)")
    ev.add_argument("--pool", default="auto",
                    help="model cards (.json or .csv) for the task-agnostic and hybrid strategies; default: the "
                         "shipped ImageNet CNN cards when they cover every model; 'none' to leave them out")
    ev.add_argument("--kind", choices=["relative", "absolute", "log_odds"], default="relative",
                    help="regret kind (default: relative)")
    ev.add_argument("--intersect", action="store_true",
                    help="evaluate on the models common to scores and fine-tune table instead of failing")
    ev.add_argument("--omit-nan", action="store_true", help="drop NaN scores instead of failing")
    ev.add_argument("--summary", action="store_true", help="print only the summary table")
    ev.add_argument("--plot", metavar="DIR", help="write the figures (PNG) into DIR (needs matplotlib)")
    ev.add_argument("--csv", metavar="PATH", help="also write every figure as long CSV")
    ev.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    ev.set_defaults(func=_cmd_evaluate)

    info = sub.add_parser("info", help="build configuration (CPU/CUDA modules, SIMD level, threads)")
    info.set_defaults(func=_cmd_info)
    return parser


def _cmd_evaluate(args) -> int:
    from .evaluate import Report

    pool = None if args.pool.lower() == "none" else args.pool
    report = Report.from_tables(args.scores, args.finetune, budgets=args.budget, pool=pool, kind=args.kind,
                                on_mismatch="intersect" if args.intersect else "raise",
                                nan_policy="omit" if args.omit_nan else "raise")
    sys.stdout.write(report.to_markdown(summary_only=args.summary))
    if args.csv:
        report.to_csv(args.csv)
    if args.json:
        report.to_json(args.json)
    if args.plot:
        paths = report.plot(args.plot)
        sys.stdout.write(f"wrote {len(paths)} figures to {args.plot}\n")
    return 0


def _cmd_info(args) -> int:
    from . import show_config

    show_config()
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input or usage)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, ImportError) as e:
        sys.stderr.write(f"transferlab {args.command}: error: {e}\n")
        return 2
