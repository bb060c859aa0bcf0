"""Figures a reader can read, checked on what matplotlib actually draws (renderer extents of every text drawn):
no two texts overlap and none leaves the figure; each strategy has its own colour and its own line style and
marker; every score asked for is in regret_at_B_bars or named there as left out; every model of a
score_vs_finetune panel is labelled or named; the oracle is explained; progress shows on a terminal only."""
from __future__ import annotations

import io
import math
import os

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")

from matplotlib.text import Text  # noqa: E402

from transferlab._plot_labels import label_points, spread  # noqa: E402
from transferlab.evaluate import Report, cost_quality, cost_quality_figure, published  # noqa: E402
from transferlab.plot import (RegretDisplay, ScoreVsFinetuneDisplay, SuccessRateDisplay, report_figures,  # noqa: E402
                              save_report_plots, strategy_styles, _headless_figure)

SCORES = published("modelspider_baseline_scores")
TLLIB = published("tllib_finetune")


@pytest.fixture(scope="module")
def report():
    return Report.from_tables(SCORES, TLLIB, budgets=[1], pool="auto")


def drawn_texts(fig):
    """(string, rotated, display bbox) of every non-empty text drawn when ``fig`` is rendered."""
    seen = []
    real = Text.draw

    def spy(self, renderer):
        real(self, renderer)
        if self.get_visible() and self.get_text().strip():
            seen.append((self.get_text(), self.get_rotation() % 180 != 0, Text.get_window_extent(self, renderer)))

    Text.draw = spy
    try:
        fig.canvas.draw()
    finally:
        Text.draw = real
    return seen


def overlaps(a, b, tol=1.0):
    return a.x0 + tol < b.x1 and b.x0 + tol < a.x1 and a.y0 + tol < b.y1 and b.y0 + tol < a.y1


def joined(texts):
    return " ".join(" ".join(texts).split())


def assert_readable(fig, name):
    texts = drawn_texts(fig)
    w, h = fig.bbox.width, fig.bbox.height
    for s, _, bb in texts:
        assert bb.x0 >= -1 and bb.y0 >= -1 and bb.x1 <= w + 1 and bb.y1 <= h + 1, f"{name}: {s!r} leaves the figure"
    flat = [(s, bb) for s, rot, bb in texts if not rot]  # a rotated text's box is wider than its glyphs
    for i in range(len(flat)):
        for j in range(i + 1, len(flat)):
            assert not overlaps(flat[i][1], flat[j][1]), f"{name}: {flat[i][0]!r} overlaps {flat[j][0]!r}"
    return [s for s, _, _ in texts]


def test_every_report_figure_is_readable(report):
    names = []
    for name, fig in report_figures(report):
        assert_readable(fig, name)
        names.append(name)
    assert names[:3] == ["regret_at_1.png", "regret_at_1_bars.png", "success_rate.png"]
    assert len(names) == 3 + len(report.meta["scores"])


def test_the_overlap_check_can_fail():
    fig = _headless_figure((3, 2))
    ax = fig.add_subplot()
    ax.annotate("densenet201", (0.5, 0.5))
    ax.annotate("densenet169", (0.51, 0.5))  # what the old labelling did with near points
    fig.tight_layout()
    with pytest.raises(AssertionError, match="overlaps"):
        assert_readable(fig, "old labels")


def test_label_points_never_overlap_and_name_what_it_leaves_out():
    rng = np.random.default_rng(0)
    fig = _headless_figure((3, 2.5))
    ax = fig.add_subplot()
    xs, ys = rng.normal(size=40) * 0.1, rng.normal(size=40) * 0.1  # a dense cloud: not all labels fit
    ax.scatter(xs, ys)
    ax.set_xlim(-0.5, 0.5)
    ax.set_ylim(-0.5, 0.5)
    fig.tight_layout()
    artists, left = label_points(ax, xs, ys, [f"model_{i}" for i in range(40)])
    assert left and len(artists) + len(left) == 40
    placed = {a.get_text() for a in artists}
    assert placed.isdisjoint({f"model_{i}" for i in left})
    assert_readable(fig, "cloud")
    frame = ax.get_window_extent(fig.canvas.get_renderer())
    for a in artists:
        bb = Text.get_window_extent(a, fig.canvas.get_renderer())
        assert frame.x0 <= bb.x0 and bb.x1 <= frame.x1 and frame.y0 <= bb.y0 and bb.y1 <= frame.y1


def test_spread_separates_in_order_within_bounds():
    out = spread([10, 10.5, 11, 50], [4, 4, 4, 4], 0, 100)
    assert list(np.argsort(out)) == [0, 1, 2, 3]
    assert np.all(np.diff(np.sort(out)) >= 4 - 1e-9) and out[3] == 50
    top = spread([99, 99, 99], [4, 4, 4], 0, 100)  # pulled down under the bound, still apart
    assert top.max() <= 98 + 1e-9 and np.all(np.diff(np.sort(top)) >= 4 - 1e-9)


def test_score_vs_finetune_labels_every_model_or_names_it(report):
    for d in report.datasets:
        fig = _headless_figure((3.6, 3.0))
        disp = ScoreVsFinetuneDisplay.from_report(report, "LogME", d).plot(ax=fig.add_subplot(), annotate=False)
        fig.tight_layout()
        disp.label()  # after the layout, as documented
        labelled = {a.get_text() for a in disp.labels_}
        assert labelled | set(disp.unlabelled_) == set(disp.models) and not labelled & set(disp.unlabelled_)
        texts = assert_readable(fig, d)
        if disp.unlabelled_:
            assert any(t.startswith("unlabelled: ") for t in texts)
        # no label covers a point: the points' pixels are outside every label box
        r = fig.canvas.get_renderer()
        pts = disp.ax_.transData.transform(np.column_stack([disp.scores, disp.finetune]))
        for a in disp.labels_:
            bb = Text.get_window_extent(a, r)
            assert not any(bb.x0 < x < bb.x1 and bb.y0 < y < bb.y1 for x, y in pts), a.get_text()


def test_success_rate_gives_each_strategy_its_own_colour_line_and_marker(report):
    for subs in (["task-agnostic", "oracle", "random"] + report.meta["scores"],
                 ["task-agnostic", "oracle", "random"] + [f"hybrid:{s}" for s in report.meta["scores"]]):
        fig = _headless_figure((9, 5))
        disp = SuccessRateDisplay.from_report(report, strategies=subs).plot(ax=fig.add_subplot())
        lines = disp.ax_.get_lines()
        assert [ln.get_label() for ln in lines] == [("oracle (upper reference)" if s == "oracle" else s) for s in subs]
        colours = [matplotlib.colors.to_hex(ln.get_color()) for ln in lines]
        assert len(set(colours)) == len(lines), colours
        looks = [(str(ln.get_linestyle()), str(ln.get_dashes() if hasattr(ln, "get_dashes") else ""),
                  ln.get_marker()) for ln in lines]
        assert len({lk[2] for lk in looks}) == len(lines)  # a distinct marker each
        assert len(set(looks)) == len(lines)
    nce, rnd = strategy_styles(["random", "NCE"]).values()
    assert nce[0] != rnd[0] and nce[1:] != rnd[1:]  # the pair that shared a colour before


def test_styles_are_the_same_in_every_figure_and_hybrids_share_their_score_colour():
    a = strategy_styles(["LogME", "NCE", "hybrid:LogME"])
    b = strategy_styles(["LogME", "NCE", "random"])
    assert a["LogME"] == b["LogME"] and a["hybrid:LogME"][0] == a["LogME"][0]
    assert a["hybrid:LogME"][1] != a["LogME"][1]


def test_regret_bars_show_every_score_or_say_which_are_left_out(report):
    (name, fig), = [(n, f) for n, f in report_figures(report) if n == "regret_at_1_bars.png"]
    texts = assert_readable(fig, name)
    for s in report.meta["scores"] + ["task-agnostic", "oracle", "random"]:
        assert s in texts, s
    assert "hybrid strategies: only hybrid:" in joined(texts)  # where the other hybrids are is said
    assert "oracle: models ranked by their mean fine-tune accuracy" in joined(texts)
    # a requested strategy without regret is stated in the figure, never silently missing
    disp = RegretDisplay.from_report(report, budget=1, strategies=["random", "LogME", "hybrid:nonesuch"])
    assert disp.missing == ["hybrid:nonesuch"]
    fig = disp.plot(kind="panels").figure_
    fig.tight_layout(rect=(0, disp.footnote_, 1, 1))
    texts = assert_readable(fig, "missing")
    assert "not shown (no regret@1 in the report): hybrid:nonesuch" in joined(texts)


def test_undefined_regret_is_written_n_a_not_left_blank():
    disp = RegretDisplay([[1.0, 2.0], [0.5, math.nan]], ["A", "B"], ["d1", "d2"])
    fig = disp.plot(kind="panels").figure_
    fig.tight_layout()
    texts = assert_readable(fig, "nan")
    assert texts.count("n/a") == 1 and "0.50" in texts and "2.00" in texts
    bars = [p.get_width() for p in disp.axes_[1].patches]
    assert bars == [2.0, 0.0]  # the undefined bar is not drawn as a value, its "n/a" says why


def _rows_with_costs(report, extract):
    from transferlab.scoring import PoolScores

    rng = np.random.default_rng(1)
    rows = [dict(dataset=d, model=m, score=s, value=0.0, seconds=float(rng.uniform(0.01, 0.5)))
            for s in report.meta["scores"] for d in report.datasets for m in report.meta["models"][d]]
    ext = {d: {m: float(rng.uniform(5, 30)) for m in report.meta["models"][d]} for d in report.datasets}
    return cost_quality(PoolScores(rows, extract_seconds=ext if extract else {}), report)


@pytest.mark.parametrize("extract", [True, False])
def test_cost_quality_figure_is_readable_and_shows_extraction_beside_scoring(report, extract):
    fig = cost_quality_figure(_rows_with_costs(report, extract), report=report)
    texts = assert_readable(fig, "cost_quality")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == (2 if extract else 1)
    xlabels = [ax.get_xlabel() for ax in axes]
    assert xlabels[0].startswith("scoring seconds")
    if extract:
        assert xlabels[1].startswith("extraction + scoring seconds")
        assert any(t.startswith("forward passes: ") for t in texts)
    else:
        assert "extraction seconds: not recorded" in joined(texts)
    for s in ("task-agnostic", "oracle", "random"):  # each baseline labelled once, beside the axes
        assert texts.count(s) == 1
    assert "oracle: models ranked" in joined(texts)


def test_the_oracle_is_explained_in_the_printed_report(report):
    assert "oracle: each dataset's models ranked by their mean fine-tune accuracy on the *other* datasets" in \
        report.to_markdown(summary_only=True)
    one = Report.from_tables({"A": {"d1": {"m1": 1.0, "m2": 0.0}}}, {"d1": {"m1": 0.9, "m2": 0.8}}, budgets=[1],
                             pool=None)
    assert "oracle" not in one.subjects and "oracle:" not in one.to_markdown()


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_save_report_plots_shows_progress_on_a_terminal_only(report, tmp_path, monkeypatch):
    import sys

    small = Report.from_tables({"A": {"d1": {"m1": 1.0, "m2": 0.0}, "d2": {"m1": 0.2, "m2": 0.4}}},
                               {"d1": {"m1": 0.9, "m2": 0.8}, "d2": {"m1": 0.7, "m2": 0.6}}, budgets=[1], pool=None)
    for progress, tty in ((True, True), (False, True), (True, False)):
        err = _Terminal() if tty else io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        paths = save_report_plots(small, tmp_path / f"p{progress}{tty}", progress=progress)
        monkeypatch.undo()
        assert [os.path.basename(p) for p in paths] == ["regret_at_1.png", "regret_at_1_bars.png",
                                                         "success_rate.png", "score_vs_finetune_A.png"]
        drawn = err.getvalue()
        if progress and tty:
            assert "figures" in drawn and "/4 " in drawn
        else:
            assert drawn == ""


def test_score_pool_steps_a_bar_per_bank_on_a_terminal_only(monkeypatch):
    import sys

    import transferlab as tl

    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    banks = {m: rng.normal(size=(30, 4)) + y[:, None] for m in ("a", "b", "c")}
    for progress, tty in ((True, True), (False, True), (True, False)):
        err = _Terminal() if tty else io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        res = tl.score_pool(banks, ["knn_loo"], labels=y, progress=progress)
        monkeypatch.undo()
        assert len(res.rows) == 3
        drawn = err.getvalue()
        if progress and tty:
            assert "score_pool" in drawn and "/3 " in drawn  # tqdm redraws at most every 0.1 s
        else:
            assert drawn == ""


def test_cli_quiet_flags_are_accepted(tmp_path, capsys):
    from transferlab.cli import main

    assert main(["evaluate", "--scores", SCORES, "--finetune", TLLIB, "--summary", "--quiet"]) == 0
    assert "oracle: each dataset's models ranked" in capsys.readouterr().out
