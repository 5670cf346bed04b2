"""The bundled champion: present in a fresh clone, reproducible, and the same in both runtimes."""

import json

import pytest

from tests.conftest import EXAMPLES, TRASHNET, real_images
from wastesort.config import REPO_ROOT
from wastesort.evaluate import evaluate_dir, evaluate_items
from wastesort.data import scan
from wastesort.predict import AliasPredictor, FastaiPredictor, OnnxPredictor
from wastesort.registry import Registry

REGISTRY = Registry(REPO_ROOT / "exports")


def test_a_fresh_clone_has_a_small_complete_champion():
    folder = REGISTRY.path("champion")
    card = REGISTRY.card("champion")
    for name in (card["files"]["fastai"], card["files"]["onnx"], card["notebook"]):
        assert (folder / name).is_file(), name
    size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
    assert size_mb < 40, f"champion is {size_mb:.1f} MB"
    assert card["labels"] == ["cardboard", "glass", "metal", "paper", "plastic", "trash"]


def test_the_champion_classifies_the_shipped_examples():
    predictor = OnnxPredictor(REGISTRY.path("champion"))
    result = evaluate_items(predictor, scan(EXAMPLES).items)
    assert result["n_images"] == 12
    assert result["accuracy"] >= 0.75, result["per_class"]


@pytest.mark.skipif(not TRASHNET.is_dir(), reason="needs ../shared/datasets/trashnet")
def test_the_card_metrics_reproduce_on_the_validation_split():
    card = REGISTRY.card("champion")
    result = evaluate_dir(TRASHNET, OnnxPredictor(REGISTRY.path("champion")), "valid",
                          card["params"])
    assert result["n_images"] == card["metrics"]["n_images"]
    assert result["accuracy"] == pytest.approx(card["metrics"]["accuracy"], abs=1e-9)
    assert result["per_class"] == card["metrics"]["per_class"]


def test_onnx_and_fastai_agree_on_real_photos():
    paths = [path for path, _ in real_images(per_class=6)]
    onnx = OnnxPredictor(REGISTRY.path("champion")).probabilities(paths)
    fastai = FastaiPredictor(REGISTRY.path("champion")).probabilities(paths)
    assert (onnx.argmax(1) == fastai.argmax(1)).mean() == 1.0
    assert abs(onnx - fastai).max() < 1e-3


def test_aliases_file_is_valid_json_with_a_champion_history():
    stacks = json.loads((REPO_ROOT / "exports" / "aliases.json").read_text())
    assert stacks["champion"] and all((REPO_ROOT / "exports" / v).is_dir() for v in stacks["champion"])


def test_the_fastai_runtime_setting_gives_the_same_top1():
    photos = [path for path, _ in real_images(per_class=3)]
    onnx = AliasPredictor(REGISTRY, "champion", runtime="onnx").predict(photos)
    fastai = AliasPredictor(REGISTRY, "champion", runtime="fastai").predict(photos)
    assert [p.label for p in onnx] == [p.label for p in fastai]
    assert {p.model_version for p in fastai} == {REGISTRY.resolve("champion")}
