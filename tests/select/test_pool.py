"""Model cards and pools: construction, validation, JSON/CSV round trips, the paper's pools as filters."""
import json

import pytest

from transferlab.pool import ModelCard, ModelPool


def _pool():
    return ModelPool([
        ModelCard("r50", dim=2048, n_params=25_000_000, upstream_accuracy=76.1, upstream_size=1_281_167,
                  tags=("resnet50", "imagenet")),
        ModelCard("big", dim=4032, n_params=88_000_000, upstream_accuracy=82.7, tags=("nasnet", "imagenet")),
        ModelCard("exp-flowers", dim=2048, n_params=25_000_000, upstream_size=300_000_000,
                  tags=("expert", "Plant")),
        ModelCard("exp-cars", dim=2048, n_params=25_000_000, tags=["expert", "vehicle"]),
        ModelCard("tiny", dim=512, n_params=3_000_000, upstream_accuracy=70.0, tags="imagenet;mobile"),
    ])


def test_card_fields_and_validation():
    c = ModelCard("m", dim="2048", n_params=10.0, upstream_accuracy="76.5", tags="a; b;")
    assert (c.dim, c.n_params, c.upstream_accuracy, c.tags) == (2048, 10, 76.5, ("a", "b"))
    with pytest.raises(ValueError, match="name"):
        ModelCard("")
    with pytest.raises(ValueError, match="dim of model 'm'"):
        ModelCard("m", dim=-3)
    with pytest.raises(ValueError, match="n_params"):
        ModelCard("m", n_params=2.5)
    with pytest.raises(ValueError, match="upstream_accuracy of model 'm' must be finite"):
        ModelCard("m", upstream_accuracy=float("nan"))
    with pytest.raises(ValueError, match="unknown fields"):
        ModelCard.from_dict({"name": "m", "acc": 1})


def test_pool_rejects_duplicates_and_indexes_by_name():
    p = _pool()
    assert len(p) == 5 and p["tiny"].dim == 512 and p[0].name == "r50" and "big" in p
    with pytest.raises(ValueError, match="duplicate model name 'x'"):
        ModelPool([ModelCard("x"), ModelCard("x")])
    with pytest.raises(KeyError, match="nope"):
        p["nope"]
    with pytest.raises(ValueError, match=r"\['nope'\]"):
        p.subset(["r50", "nope"])


def test_paper_pools_as_filters():
    p = _pool()
    assert p.paper_pool("All").names == p.names
    # ResNet-50: at most as many parameters as the reference card (unknown counts excluded).
    assert p.paper_pool("ResNet-50", reference="r50").names == ["r50", "exp-flowers", "exp-cars", "tiny"]
    assert p.paper_pool("expert").names == ["exp-flowers", "exp-cars"]
    assert p.paper_pool("Dim2048").names == ["r50", "exp-flowers", "exp-cars", "tiny"]
    assert p.paper_pool("ImNetAccuracies").names == ["r50", "big", "tiny"]
    with pytest.raises(ValueError, match="reference card 'resnet50'"):
        p.paper_pool("ResNet-50")
    with pytest.raises(ValueError, match="unknown paper pool"):
        p.paper_pool("Dim4096")


def test_filter_combinations():
    p = _pool()
    assert p.filter(tags=["IMAGENET"]).names == ["r50", "big", "tiny"]  # case-insensitive
    assert p.filter(any_tags=["plant", "mobile"]).names == ["exp-flowers", "tiny"]
    assert p.filter(exclude_tags=["expert"], max_params=30_000_000).names == ["r50", "tiny"]
    assert p.filter(where=lambda c: c.name.startswith("exp")).names == ["exp-flowers", "exp-cars"]


def test_json_and_csv_round_trip(tmp_path):
    p = _pool()
    p.to_json(tmp_path / "cards.json")
    p.to_csv(tmp_path / "cards.csv")
    assert ModelPool.from_json(tmp_path / "cards.json") == p
    assert ModelPool.from_csv(tmp_path / "cards.csv") == p
    assert ModelPool.load(tmp_path / "cards.csv") == p
    # A bare list of cards, and CSV with only some columns.
    (tmp_path / "list.json").write_text(json.dumps([{"name": "a"}, {"name": "b", "dim": 3}]))
    assert ModelPool.load(tmp_path / "list.json").names == ["a", "b"]
    (tmp_path / "min.csv").write_text("name,upstream_accuracy\na,70\nb,\n")
    q = ModelPool.from_csv(tmp_path / "min.csv")
    assert q["a"].upstream_accuracy == 70.0 and q["b"].upstream_accuracy is None
    with pytest.raises(ValueError, match="not found"):
        ModelPool.load(tmp_path / "missing.json")
    (tmp_path / "bad.csv").write_text("model,dim\na,3\n")
    with pytest.raises(ValueError, match="'name' column"):
        ModelPool.from_csv(tmp_path / "bad.csv")


def test_shipped_imagenet_cards_match_torchvision_docs():
    p = ModelPool.imagenet_cnns()
    assert len(p) == 11
    # Values from the torchvision model documentation (IMAGENET1K_V1 weights).
    assert p["resnet50"].upstream_accuracy == 76.130 and p["resnet50"].n_params == 25557032
    assert p["googlenet"].upstream_accuracy == 69.778 and p["mnasnet1_0"].upstream_accuracy == 73.456
    assert p["densenet169"].n_params == 14149480 and p["inception_v3"].n_params == 27161264
    assert all(c.upstream_size == 1281167 and "imagenet" in c.tags for c in p)
