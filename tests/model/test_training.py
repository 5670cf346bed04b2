"""The training notebook as a job: tiny parameters, a real fastai fit, a real export."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tests.conftest import make_dataset, real_images
from wastesort import data, train as training
from wastesort.config import Settings
from wastesort.notebooks import train
from wastesort.predict import FastaiPredictor, OnnxPredictor
from wastesort.preprocess import to_input
from wastesort.images import load_rgb
from wastesort.registry import Registry

TINY = {"epochs": 1, "freeze_epochs": 1, "size": 64, "bs": 8, "run_lr_find": False}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Registry, str]:
    root = tmp_path_factory.mktemp("training")
    settings = Settings.from_env(data_dir=make_dataset(root / "data"),
                                 exports_dir=root / "exports")
    version = train(settings, dict(TINY))
    return Registry(settings.exports_dir), version


def test_the_version_folder_holds_model_onnx_card_and_notebook(trained):
    registry, version = trained
    folder = registry.path(version)
    assert sorted(p.name for p in folder.iterdir()) == [
        "card.json", "model.onnx", "model.pkl", "train.ipynb"]
    assert registry.versions() == [version]
    assert not (registry.root / ".runs" / f"train-{version}.ipynb").exists()


def test_the_card_describes_the_model(trained):
    registry, version = trained
    card = registry.card(version)
    assert card["version"] == version and card["parent"] is None
    assert card["labels"] == ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
    assert card["arch"] == "mobilenetv2_100"
    assert card["params"]["size"] == 64 and card["params"]["epochs"] == 1
    assert card["preprocessing"]["size"] == [64, 64] and len(card["preprocessing"]["mean"]) == 3
    assert len(card["data"]["fingerprint"]) == 64
    assert card["data"]["n_train"] + card["data"]["n_valid"] == 48
    metrics = card["metrics"]
    assert metrics["n_images"] == card["data"]["n_valid"]
    assert 0 <= metrics["accuracy"] <= 1 and set(metrics["per_class"]) == set(card["labels"])
    assert np.array(metrics["confusion_matrix"]["rows_true_cols_pred"]).sum() == metrics["n_images"]
    assert card["notebook"] == "train.ipynb"


def test_the_executed_notebook_is_kept_as_provenance(trained):
    registry, version = trained
    notebook = json.loads((registry.path(version) / "train.ipynb").read_text())
    sources = ["".join(c["source"]) for c in notebook["cells"]]
    assert any(version in s for s in sources)  # papermill's injected parameters
    outputs = [o for c in notebook["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert any("registered " + version in "".join(o.get("text", "")) for o in outputs)


def test_onnx_has_a_dynamic_batch_axis(trained):
    registry, version = trained
    session = ort.InferenceSession(str(registry.path(version) / "model.onnx"))
    for batch in (1, 5):
        x = np.random.default_rng(0).normal(size=(batch, 3, 64, 64)).astype(np.float32)
        probs = session.run(None, {"x": x})[0]
        assert probs.shape == (batch, 6)
        np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_numpy_preprocessing_matches_fastai_exactly(trained):
    registry, version = trained
    fastai = FastaiPredictor(registry.path(version))
    images = [load_rgb(path) for path, _ in real_images()]
    theirs = fastai.learn.dls.test_dl(images, bs=len(images), num_workers=0).one_batch()[0].numpy()
    ours = to_input(images, registry.card(version)["preprocessing"])
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_onnx_and_fastai_agree_on_real_photos(trained):
    registry, version = trained
    paths = [path for path, _ in real_images()]
    onnx = OnnxPredictor(registry.path(version)).probabilities(paths)
    fastai = FastaiPredictor(registry.path(version)).probabilities(paths)
    assert (onnx.argmax(1) == fastai.argmax(1)).all()
    np.testing.assert_allclose(onnx, fastai, atol=1e-4)


def test_a_failing_run_registers_nothing_and_keeps_the_notebook(tmp_path):
    settings = Settings.from_env(data_dir=tmp_path / "missing", exports_dir=tmp_path / "exports")
    with pytest.raises(Exception, match="not a folder"):
        train(settings, dict(TINY))
    assert Registry(settings.exports_dir).versions() == []
    assert list((tmp_path / "exports" / ".runs").glob("train-*.ipynb"))


def tiny_dataloaders(tmp_path, **recipe):
    """The package's data loaders on generated photos (8 a class, 96x72 px)."""
    recipe = training.Recipe(group_block=1, **recipe)
    report = data.scan(make_dataset(tmp_path / "data"))
    items, is_valid = data.split_as_trained(report, recipe.to_dict())
    return items, is_valid, recipe, training.dataloaders(items, is_valid, recipe)


def test_the_backbone_learns_at_lr_over_lr_mult(tmp_path):
    """fine_tune gives the backbone lr / lr_mult; the recipe's lr_mult must reach it."""
    *_, recipe, dls = tiny_dataloaders(tmp_path, epochs=1, size=48, bs=8, lr=0.01, lr_mult=4)
    learn = training.fit(training.learner(dls, recipe, Settings.from_env().weights_dir), recipe)
    backbone, head = learn.opt.hypers[0]["lr"], learn.opt.hypers[-1]["lr"]
    assert head / backbone == pytest.approx(4)


def test_training_batches_are_what_the_saved_pipeline_makes_of_the_files(tmp_path):
    """Images are decoded and resized once before training; the pixels must not change."""
    items, is_valid, _, dls = tiny_dataloaders(tmp_path, size=48, bs=64)
    files = [item.path for item, valid in zip(items, is_valid) if valid]
    from_files = dls.test_dl([load_rgb(path) for path in files], num_workers=0).one_batch()[0]
    assert from_files.shape[0] == len(files)
    assert torch.equal(dls.valid.one_batch()[0], from_files)
