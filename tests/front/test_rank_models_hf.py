"""tl.rank_models on Hugging Face text models (two tiny random BERTs written to a temporary directory, loaded
offline): layers "last", "mean" and "best" and the poolings equal the same computation done by hand with
transformers; the cache skips every forward pass; Hugging Face datasets are read by column name."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from _front_models import hidden_states_by_hand, texts, tiny_berts  # noqa: E402

import transferlab as tl  # noqa: E402

BATCH = 32


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """The models are tiny: one intra-op thread is faster (and far faster on a loaded shared machine, where
    two spinning threads made each small matmul 60x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def berts(tmp_path_factory):
    return tiny_berts(tmp_path_factory.mktemp("berts"))


@pytest.fixture(scope="module")
def corpus():
    return texts()


@pytest.fixture(scope="module")
def states(berts, corpus):
    """{path: [every hidden state, mean-pooled by hand]}."""
    sentences, _ = corpus
    return {p: hidden_states_by_hand(p, sentences, batch_size=BATCH) for p in berts}


def _mean_of_layers(hs):
    """transformer-ranker's layermean: the mean of layers 1..L (the embedding output left out)."""
    return (np.sum([h.astype(np.float64) for h in hs[1:]], axis=0) / (len(hs) - 1)).astype(np.float32)


def _name(path):
    return path.rstrip("/").split("/")[-1]


def test_layer_mean_equals_the_hand_computation(berts, corpus, states):
    sentences, y = corpus
    r = tl.rank_models(berts, (sentences, y), scores=("logme", "knn_loo"), layers="mean", batch_size=BATCH,
                       progress=False)
    by_hand = {}
    for p in berts:
        x = _mean_of_layers(states[p])
        by_hand[_name(p)] = (tl.logme(x, y), tl.knn_loo(x, y))
        assert r.values[_name(p)]["logme"] == pytest.approx(by_hand[_name(p)][0], rel=1e-4)
        assert r.values[_name(p)]["knn_loo"] == pytest.approx(by_hand[_name(p)][1], abs=1e-12)
        assert r.layers[_name(p)]["logme"] == tuple(range(1, len(states[p])))
    assert list(r.models) == sorted(by_hand, key=lambda m: (-by_hand[m][0], m))
    assert "mean(L1-L" in r.to_markdown()


def test_layer_best_and_last_equal_the_hand_computation(berts, corpus, states):
    sentences, y = corpus
    best = tl.rank_models(berts, (sentences, y), scores=("knn_loo", "logme"), layers="best", batch_size=BATCH,
                          progress=False)
    last = tl.rank_models(berts, (sentences, y), scores=("knn_loo", "logme"), layers="last", batch_size=BATCH,
                          progress=False)
    for p in berts:
        name, hs = _name(p), states[p]
        for score, fn, tol in (("knn_loo", tl.knn_loo, dict(abs=1e-12)), ("logme", tl.logme, dict(rel=1e-4))):
            per_layer = {i: fn(hs[i], y) for i in range(1, len(hs))}
            layer = max(per_layer, key=lambda i: (per_layer[i], -i))  # the best; equal values: the lower layer
            assert best.layer_values[name][score] == pytest.approx(per_layer, **tol)
            assert best.layers[name][score] == layer
            assert best.values[name][score] == pytest.approx(per_layer[layer], **tol)
            assert last.values[name][score] == pytest.approx(per_layer[len(hs) - 1], **tol)
            assert last.layers[name][score] == len(hs) - 1
    picked = tl.rank_models(berts, (sentences, y), scores="logme", layers=[0, -1], batch_size=BATCH, progress=False)
    for p in berts:
        hs = states[p]
        assert picked.layer_values[_name(p)]["logme"] == pytest.approx(
            {0: tl.logme(hs[0], y), len(hs) - 1: tl.logme(hs[-1], y)}, rel=1e-4)


@pytest.mark.parametrize("pooling", ["first", "last"])
def test_poolings_equal_the_hand_computation(berts, corpus, pooling):
    sentences, y = corpus
    r = tl.rank_models(berts, (sentences, y), scores="logme", pooling=pooling, batch_size=BATCH, progress=False)
    for p in berts:
        hs = hidden_states_by_hand(p, sentences, batch_size=BATCH, pooling=pooling)
        assert r.values[_name(p)]["logme"] == pytest.approx(tl.logme(hs[-1], y), rel=1e-4)


def test_second_call_with_cache_dir_runs_no_forward_pass(berts, corpus, tmp_path, monkeypatch):
    sentences, y = corpus
    calls = []
    forward = transformers.BertModel.forward

    def counting(self, *args, **kwargs):
        calls.append(1)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(transformers.BertModel, "forward", counting)
    first = tl.rank_models(berts, (sentences, y), layers="best", cache_dir=tmp_path, batch_size=BATCH, progress=False)
    assert len(calls) == 2 * (len(sentences) + BATCH - 1) // BATCH
    calls.clear()
    for layers in ("best", "mean", "last"):  # every layer is in the bank: any rule re-scores from it
        again = tl.rank_models(berts, (sentences, y), layers=layers, cache_dir=tmp_path, batch_size=BATCH,
                               progress=False)
        assert calls == [] and all(again.cached.values())
    assert tl.rank_models(berts, (sentences, y), layers="best", cache_dir=tmp_path, batch_size=BATCH,
                          progress=False).values == first.values
    # another pooling is another bank
    tl.rank_models(berts, (sentences, y), pooling="first", cache_dir=tmp_path, batch_size=BATCH, progress=False)
    assert len(calls) == 2 * (len(sentences) + BATCH - 1) // BATCH


def test_hugging_face_dataset_columns(berts, corpus):
    datasets = pytest.importorskip("datasets")
    sentences, y = corpus
    ref = tl.rank_models(berts, (sentences, y), scores="logme", batch_size=BATCH, progress=False)
    ds = datasets.Dataset.from_dict({"id": list(range(len(y))), "sentence": sentences, "labels": y.tolist()})
    got = tl.rank_models(berts, ds, scores="logme", batch_size=BATCH, progress=False)
    assert got.values == ref.values
    renamed = ds.rename_columns({"sentence": "body", "labels": "answer"})
    with pytest.raises(ValueError, match="no label column found.*label_column="):
        tl.rank_models(berts, renamed, progress=False)
    got = tl.rank_models(berts, renamed, scores="logme", text_column="body", label_column="answer",
                         batch_size=BATCH, progress=False)
    assert got.values == ref.values
    with pytest.raises(TypeError, match="pick a split"):
        tl.rank_models(berts, datasets.DatasetDict({"train": ds}), progress=False)


def test_models_given_as_loaded_objects(berts, corpus):
    sentences, y = corpus
    ref = tl.rank_models(berts, (sentences, y), scores="logme", batch_size=BATCH, progress=False)
    model = transformers.AutoModel.from_pretrained(berts[0], local_files_only=True)
    tok = transformers.AutoTokenizer.from_pretrained(berts[0], local_files_only=True)
    got = tl.rank_models({"pair": (model, tok), "instance": model}, (sentences, y), scores="logme", batch_size=BATCH,
                         progress=False)
    assert got.values["pair"] == got.values["instance"] == ref.values[_name(berts[0])]


def test_a_model_that_is_not_on_disk_is_never_downloaded(corpus, berts):
    sentences, y = corpus
    with pytest.raises(ValueError, match="never downloads"):
        tl.rank_models([berts[0], "no-such-org/no-such-model-xyz"], (sentences, y), progress=False)


def test_text_to_image_models_and_back_name_the_model(berts, corpus):
    sentences, y = corpus
    with pytest.raises(ValueError, match=r"models\['bert0'\] is a text model"):
        tl.rank_models(berts, (np.zeros((len(y), 4), np.float32), y), progress=False)
    with pytest.raises(ValueError, match=r"layers: index 7 is out of range for model 'bert0'"):
        tl.rank_models(berts, (sentences, y), layers=[7], progress=False)


def test_vision_models_on_an_image_column_equal_the_hand_computation(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    from _front_models import digit_images, tiny_vits, vit_states_by_hand

    images, y = digit_images()
    vits = tiny_vits(tmp_path / "vits")
    ds = datasets.Dataset.from_dict({"img": images, "label": y.tolist()}).cast_column("img", datasets.Image())
    calls = []
    forward = transformers.ViTModel.forward
    monkeypatch.setattr(transformers.ViTModel, "forward",
                        lambda self, *a, **k: calls.append(1) or forward(self, *a, **k))
    r = tl.rank_models(vits, ds, scores="knn_loo", layers="best", pooling="first", batch_size=BATCH,
                       cache_dir=tmp_path / "cache", progress=False)
    for p in vits:
        hs = vit_states_by_hand(p, images, batch_size=BATCH)
        assert r.layer_values[_name(p)]["knn_loo"] == pytest.approx(
            {i: tl.knn_loo(hs[i], y) for i in range(1, len(hs))}, abs=1e-12)
    calls.clear()
    again = tl.rank_models(vits, (images, y), scores="knn_loo", layers="best", pooling="first", batch_size=BATCH,
                           cache_dir=tmp_path / "cache", progress=False)
    assert calls == [] and all(again.cached.values()) and again.values == r.values


def test_progress_shows_extraction_and_each_layer_scored(berts, corpus, monkeypatch):
    pytest.importorskip("tqdm")
    from _front_models import Terminal

    sentences, y = corpus
    term = Terminal()
    monkeypatch.setattr("sys.stderr", term)
    tl.rank_models(berts, (sentences, y), layers="best", batch_size=BATCH, progress=True)
    monkeypatch.undo()
    drawn = "".join(term.parts)
    assert "rank_models" in drawn and "\rbert1@mean:" in drawn and "bert1: scoring layers" in drawn
