"""Evaluating transferability scores and selection strategies against fine-tune accuracies.

    from transferlab import evaluate as ev
    ev.regret(["resnet50"], finetune_on_pets)               # relative regret of fine-tuning resnet50 only
    ev.top_k_regret(logme_on_pets, finetune_on_pets, k=3)   # regret of the 3 highest-scored models
    ev.weighted_tau(logme_on_pets, finetune_on_pets)        # scipy.stats.weightedtau semantics
    report = ev.Report.from_tables("scores.csv", "finetune.csv", budgets=(1, 2, 3))
    print(report.to_markdown())

Definitions: Renggli et al. 2022, "Which model to transfer? Finding the needle in the growing haystack"
(regret, hybrid strategy, budget to zero regret in Appendix G, success rate in Figure 7); ``SCORES.md``.
Score ties count as ties: every figure is the expectation over uniformly random tie-breaks unless ``ties="name"``.
"""
from transferlab.evaluate._cost import cost_markdown, cost_quality, cost_quality_figure, plot_cost_quality
from transferlab.evaluate._lobo import LOBOResult, hierarchical_ci, leave_one_benchmark_out
from transferlab.evaluate._correlation import kendall_tau, pearson, spearman, top_k_recall, weighted_tau
from transferlab.evaluate._regret import (REGRET_KINDS, TIES, budget_to_zero_regret, expected_random_budget_to_zero, expected_random_regret, random_success_rate, regret, relative_delta, success_at, success_rate, top_k_regret)
from transferlab.evaluate._published import published
from transferlab.evaluate._report import Report
from transferlab.evaluate._tables import normalize_dataset, read_finetune, read_scores

__all__ = [
    "LOBOResult",
    "REGRET_KINDS",
    "Report",
    "TIES",
    "budget_to_zero_regret",
    "cost_markdown",
    "cost_quality",
    "cost_quality_figure",
    "expected_random_budget_to_zero",
    "expected_random_regret",
    "hierarchical_ci",
    "kendall_tau",
    "leave_one_benchmark_out",
    "normalize_dataset",
    "pearson",
    "published",
    "plot_cost_quality",
    "random_success_rate",
    "read_finetune",
    "read_scores",
    "regret",
    "relative_delta",
    "spearman",
    "success_at",
    "success_rate",
    "top_k_recall",
    "top_k_regret",
    "weighted_tau",
]
