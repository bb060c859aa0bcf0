"""tl.rank_models on torch models: the ranking equals scores computed by hand on the same features, a second
call with the same cache_dir runs no forward pass, the Ranking's views agree, inputs are left as they were."""
from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _front_models import Terminal, digits, mlp, mlps, penultimate  # noqa: E402
from conftest import digest  # noqa: E402

import transferlab as tl  # noqa: E402
from transferlab.core import linalg  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """The models are tiny: one intra-op thread is faster (and far faster on a loaded shared machine, where
    two spinning threads made each small matmul 60x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data():
    return digits()


@pytest.fixture(scope="module")
def ranked(data):
    """rank_models on the five MLPs, and the same scores computed by hand."""
    x, y = data
    models = mlps()
    ranking = tl.rank_models(models, (x, y), scores=("knn_loo", "logme"), progress=False)
    by_hand = {name: penultimate(m, x) for name, m in models.items()}
    return ranking, by_hand


def test_order_equals_knn_loo_by_hand(ranked, data):
    ranking, feats = ranked
    _, y = data
    knn = {name: tl.knn_loo(f, y) for name, f in feats.items()}
    assert len(set(knn.values())) == 5  # distinct values: the order is a real test, not a tie rule
    assert list(ranking.models) == sorted(knn, key=lambda m: -knn[m])
    assert ranking.best == max(knn, key=knn.get)
    for name in knn:
        assert ranking.values[name]["knn_loo"] == pytest.approx(knn[name], abs=1e-12)
        assert ranking.values[name]["logme"] == pytest.approx(tl.logme(feats[name], y), rel=1e-5)
        assert ranking.layers[name] == {"knn_loo": None, "logme": None}  # one output: no layer to report
        assert ranking.seconds[name]["knn_loo"] > 0 and ranking.extraction_seconds[name] > 0
        assert ranking.cached[name] is False


def test_ranking_is_task_aware_selection(ranked):
    ranking, _ = ranked
    assert tuple(ranking.selection) == ranking.models
    assert ranking.selection.strategy == "task-aware:knn_loo"
    assert tl.select.task_aware(ranking.scores_of("knn_loo")).models == ranking.models


def test_table_markdown_str_and_frame(ranked):
    ranking, _ = ranked
    rows = ranking.table()
    assert [r["model"] for r in rows] == list(ranking.models) and [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert set(rows[0]) == {"rank", "model", "knn_loo", "knn_loo_seconds", "knn_loo_layer", "logme",
                            "logme_seconds", "logme_layer", "extraction_seconds", "cached"}
    md = ranking.to_markdown()
    lines = md.splitlines()
    assert lines[0].split("|")[1].strip() == "model" and len(lines) == 2 + 5
    assert ranking.best in lines[2] and f"{ranking.values[ranking.best]['knn_loo']:.4f}" in lines[2]
    text = str(ranking)
    assert text.startswith("Ranking of 5 models by knn_loo") and f"best: {ranking.best}" in text and md in text
    pd = pytest.importorskip("pandas")
    frame = ranking.to_frame()
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == list(ranking.models)
    assert frame.loc[ranking.best, "knn_loo"] == ranking.values[ranking.best]["knn_loo"]


def test_to_frame_and_plot_without_their_packages(ranked, monkeypatch):
    ranking, _ = ranked
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="to_frame needs pandas"):
        ranking.to_frame()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="plot needs matplotlib"):
        ranking.plot()


def test_plot_draws_one_labelled_bar_per_model_best_on_top(ranked):
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ranking, _ = ranked
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = ranking.plot("logme", ax=fig.add_subplot())
    assert len(ax.patches) == 5
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == ranking.best  # barh draws bottom-up
    assert "logme" in ax.get_xlabel() and len(ax.texts) == 5
    with pytest.raises(ValueError, match="score must be one of"):
        ranking.plot("leep")


def test_second_call_with_cache_dir_runs_no_forward_pass(data, tmp_path):
    x, y = data
    models = {"a": mlp(0, 16), "b": mlp(1, 32)}
    calls = []
    for m in models.values():
        m.register_forward_pre_hook(lambda mod, inp: calls.append(1))
    first = tl.rank_models(models, (x, y), cache_dir=tmp_path, progress=False, batch_size=500)
    assert len(calls) == 2 * 4 and not any(first.cached.values())  # 1797 rows in batches of 500
    calls.clear()
    second = tl.rank_models(models, (x, y), cache_dir=tmp_path, progress=False, batch_size=500)
    assert calls == [] and all(second.cached.values())
    assert second.values == first.values and second.models == first.models
    # the cache is an ordinary tree of banks
    pool = tl.score_pool(str(tmp_path), ["knn_loo"])
    assert {r["model"]: r["value"] for r in pool.rows} == {m: v["knn_loo"] for m, v in first.values.items()}
    # other labels are other data: extracted again, never read from the other bank
    y2 = (y + 1) % 10
    third = tl.rank_models(models, (x, y2), cache_dir=tmp_path, progress=False, batch_size=500)
    assert len(calls) == 2 * 4 and not any(third.cached.values())


def test_inputs_and_models_are_left_as_they_were(data):
    x, y = data
    x, y = x.copy(), y.copy()
    models = {"a": mlp(0, 16), "b": mlp(1, 32)}
    models["b"].train()
    models["a"].eval()
    before = digest(x, y), {n: digest(*m.state_dict().values()) for n, m in models.items()}
    tl.rank_models(models, (x, y), progress=False)
    assert (digest(x, y), {n: digest(*m.state_dict().values()) for n, m in models.items()}) == before
    assert models["b"].training and not models["a"].training


def test_in_place_first_layer_does_not_touch_the_callers_array():
    x = np.random.default_rng(0).normal(size=(60, 64)).astype(np.float32)
    y = np.arange(60) % 3
    keep = x.copy()
    models = {f"m{i}": torch.nn.Sequential(torch.nn.ReLU(inplace=True), mlp(i, 8)) for i in range(2)}
    tl.rank_models(models, (x, y), progress=False)
    np.testing.assert_array_equal(x, keep)


def test_list_names_callables_and_torch_data(data):
    x, y = data
    a, b = mlp(0, 16), mlp(1, 32)
    ref = tl.rank_models({"a": a, "b": b}, (x, y), progress=False)
    # a list: names from the class, numbered when repeated
    listed = tl.rank_models([a, b], (x, y), progress=False)
    assert set(listed.models) == {"Sequential-0", "Sequential-1"}
    assert listed.values["Sequential-0"] == pytest.approx(ref.values["a"])

    def features_b(batch):  # a plain function returning features (numpy out is fine)
        return penultimate(b, batch.numpy())

    mixed = tl.rank_models({"a": a, "b": features_b}, (x, y), progress=False)
    assert mixed.values["b"] == pytest.approx(ref.values["b"], rel=1e-6)
    # a torch Dataset and a DataLoader over it give the same ranking as arrays
    ds = torch.utils.data.TensorDataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y))
    for d in (ds, torch.utils.data.DataLoader(ds, batch_size=100)):
        got = tl.rank_models({"a": a, "b": b}, d, progress=False)
        assert got.models == ref.models
        for m in ("a", "b"):
            assert got.values[m] == pytest.approx(ref.values[m], rel=1e-6)


def test_callables_are_cached_only_when_bound_to_a_module(data, tmp_path):
    x, y = data
    a = mlp(0, 16)

    class Embed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = mlp(1, 32)

        def embed(self, batch):
            return self.net[:-1](batch)

    def plain(batch):
        return penultimate(a, batch.numpy())

    models = {"bound": Embed().embed, "plain": plain}
    tl.rank_models(models, (x, y), cache_dir=tmp_path, progress=False)
    again = tl.rank_models(models, (x, y), cache_dir=tmp_path, progress=False)
    assert again.cached == {"bound": True, "plain": False}
    assert any(n.startswith("plain: a plain function") for n in again.notes)


def test_equal_values_are_ranked_by_name(data):
    x, y = data
    twins = {"zeta": mlp(5, 16), "alpha": mlp(5, 16), "mid": mlp(6, 16)}
    r = tl.rank_models(twins, (x, y), progress=False)
    assert r.values["zeta"] == r.values["alpha"]
    assert r.models.index("alpha") == r.models.index("zeta") - 1


def test_probs_score_reads_the_models_logits(data):
    x, y = data
    models = {"a": mlp(0, 16), "b": mlp(1, 32)}
    r = tl.rank_models(models, (x, y), scores=("leep", "knn_loo"), progress=False)
    for name, m in models.items():
        with torch.no_grad():
            logits = m(torch.as_tensor(x, dtype=torch.float32)).numpy()
        probs = linalg.softmax_rows(logits.astype(np.float64)).astype(np.float32)
        assert r.values[name]["leep"] == pytest.approx(tl.leep(probs, y), rel=1e-5)
    assert r.primary == "leep"


def test_string_labels_are_remapped(data):
    x, y = data
    models = {"a": mlp(0, 16), "b": mlp(1, 32)}
    named = np.array([f"digit-{v}" for v in y])
    assert tl.rank_models(models, (x, named), progress=False).values == \
        tl.rank_models(models, (x, y), progress=False).values


def test_progress_bars_draw_on_a_terminal_and_progress_false_silences_them(data, monkeypatch):
    pytest.importorskip("tqdm")
    x, y = data
    models = {"a": mlp(0, 16), "b": mlp(1, 32)}
    for progress in (True, False):
        term = Terminal()
        monkeypatch.setattr(sys, "stderr", term)
        tl.rank_models(models, (x, y), progress=progress)
        monkeypatch.undo()
        drawn = "".join(term.parts)
        if progress:  # the pool's bar and extract's bar of each model
            assert "rank_models" in drawn and "\ra:" in drawn and "\rb:" in drawn and "/1797" in drawn
        else:
            assert drawn == ""


def test_an_interrupted_extraction_resumes_from_its_watermark(data, tmp_path):
    x, y = data
    models = {"a": mlp(0, 16), "b": mlp(1, 32)}
    calls, fail_at = [], {"n": 3}

    def count_and_maybe_fail(mod, inp):
        calls.append(1)
        if len(calls) == fail_at["n"]:
            raise KeyboardInterrupt  # as if the user stopped it during the third batch of model "a"

    for m in models.values():
        m.register_forward_pre_hook(count_and_maybe_fail)
    with pytest.raises(KeyboardInterrupt):
        tl.rank_models(models, (x, y), cache_dir=tmp_path, batch_size=500, progress=False)
    calls.clear()
    fail_at["n"] = -1
    resumed = tl.rank_models(models, (x, y), cache_dir=tmp_path, batch_size=500, progress=False)
    assert len(calls) == 2 + 4  # model "a": batches 3 and 4 only (two were committed); model "b": all four
    fresh = tl.rank_models({"a": mlp(0, 16), "b": mlp(1, 32)}, (x, y), batch_size=500, progress=False)
    assert resumed.values == fresh.values


def test_pil_images_reach_a_module_as_float_chw_in_0_1():
    pytest.importorskip("PIL")
    from _front_models import digit_images

    images, y = digit_images(200)
    as_tensor = np.stack([np.asarray(im, dtype=np.float32)[None] / 255.0 for im in images])  # (N, 1, 8, 8)

    def conv(seed):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                       torch.nn.Linear(144, 10))

    models = {"c0": conv(0), "c1": conv(1)}
    assert tl.rank_models(models, (images, y), progress=False).values == \
        tl.rank_models(models, (as_tensor, y), progress=False).values


def test_models_the_primary_score_cannot_score_come_last(data):
    x, y = data
    a, b = mlp(0, 16), mlp(1, 32)

    def features(batch):  # no logits: LEEP cannot score it
        return penultimate(b, batch.numpy())

    r = tl.rank_models({"a": a, "b": b, "f": features}, (x, y), scores=("leep", "knn_loo"), progress=False)
    assert r.models[-1] == "f" and np.isnan(r.values["f"]["leep"]) and r.values["f"]["knn_loo"] > 0
    assert r.selection.omitted == ("f",) and tuple(r.selection) == r.models[:2]
    assert any("leep" in n and "f" in n for n in r.notes)
    assert "n/a" in r.to_markdown()
    with pytest.raises(ValueError, match="primary score 'leep' gave no value for any model"):
        tl.rank_models({"f": features, "g": features}, (x, y), scores="leep", progress=False)


def test_a_callable_reads_text_as_a_list_of_str():
    from _front_models import CUES, NEUTRAL, texts

    sentences, y = texts()
    vocab = {w: i for i, w in enumerate(NEUTRAL + CUES)}

    def bag_of_words(batch):
        assert isinstance(batch, list) and all(isinstance(s, str) for s in batch)
        out = np.zeros((len(batch), len(vocab)), np.float32)
        for r, s in enumerate(batch):
            for w in s.split():
                out[r, vocab[w]] += 1
        return out

    def cues_only(batch):
        return bag_of_words(batch)[:, len(NEUTRAL):]

    r = tl.rank_models({"bow": bag_of_words, "cues": cues_only}, (sentences, y), scores="knn_loo", progress=False)
    assert r.values["bow"]["knn_loo"] == tl.knn_loo(bag_of_words(sentences), y)
    assert r.values["cues"]["knn_loo"] == tl.knn_loo(cues_only(sentences), y) == 1.0 and r.best == "cues"
    with pytest.raises(ValueError, match="names .* repeat; pass a mapping"):
        tl.rank_models([bag_of_words, bag_of_words, "bag_of_words-0"], (sentences, y), progress=False)
