"""Turning a trained learner into a registered, self-describing model version.

A version holds the fastai learner (for notebooks and further training), an ONNX graph
with a dynamic batch axis (for the app and the service), and ``card.json``, which says
everything needed to use and judge the model without opening either file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import nn

from . import __version__
from .data import DataReport, Item
from .evaluate import metrics_of, score_items
from .monitor import reference
from .predict import OnnxPredictor
from .preprocess import preprocessing_spec
from .registry import CARD, FILES, Registry, new_version_id, now_utc
from .train import Recipe, normalization


def export_onnx(model: nn.Module, path: Path, size: int) -> None:
    """Model plus softmax, one batch axis left dynamic, weights inside the one file."""
    wrapped = nn.Sequential(model, nn.Softmax(dim=1)).eval().float()
    example = torch.zeros(2, 3, size, size)
    torch.onnx.export(wrapped, (example,), str(path), dynamo=True, opset_version=18,
                      input_names=["x"], output_names=["probs"],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False)


def register(learn, registry: Registry, recipe: Recipe, report: DataReport,
             valid_items: list[Item], version_id: str | None = None,
             parent: str | None = None, data: dict | None = None) -> str:
    """Export ``learn`` as a new version of ``registry``; returns its id.

    ``data`` adds to (or overrides) what the card says about the training data, e.g. the
    reviewed feedback a retrained model learned from.

    The card's metrics are measured on ``valid_items`` through the exported ONNX file, so
    they are the numbers users get, not the training loop's.
    """
    version = version_id or new_version_id(recipe.arch)
    if parent is None and "champion" in registry.aliases():
        parent = registry.aliases()["champion"]
    mean, std = normalization(learn)
    labels = [str(v) for v in learn.dls.vocab]
    with registry.new_version(version) as folder:
        learn.export(folder / FILES["fastai"])
        export_onnx(learn.model, folder / FILES["onnx"], recipe.size)
        card = {
            "version": version,
            "parent": parent,
            "created_at": now_utc(),
            "wastesort_version": __version__,
            "arch": recipe.arch,
            "labels": labels,
            "preprocessing": preprocessing_spec(recipe.size, mean, std),
            "params": recipe.to_dict(),
            "data": {
                "root": str(report.root),
                "fingerprint": report.fingerprint,
                "class_counts": report.class_counts,
                "n_train": len(learn.dls.train_ds),
                "n_valid": len(valid_items),
                "excluded": {"conflicts": sum(len(g) for g in report.conflicts()),
                             "unreadable": len(report.unreadable),
                             "tiny": len(report.tiny), "animated": len(report.animated)},
                **(data or {}),
            },
            "files": {"fastai": FILES["fastai"], "onnx": FILES["onnx"]},
            "notebook": None,
        }
        (folder / CARD).write_text(json.dumps(card, indent=2))
        start = time.perf_counter()
        predictor = OnnxPredictor(folder)
        scored = score_items(predictor, valid_items)
        card["metrics"] = metrics_of(scored, predictor, start)
        # What traffic should look like if the world matches the validation data (drift).
        card["reference"] = reference(labels, [(s.prediction.label, s.prediction.confidence)
                                               for s in scored])
        (folder / CARD).write_text(json.dumps(card, indent=2))
    return version
