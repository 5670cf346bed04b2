"""How good a model is, measured the way users meet it: through a :class:`Predictor`.

``wastesort evaluate`` and the model cards use these functions with the ONNX predictor, so
the reported numbers are those of the files that ship.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import Item, scan, split_as_trained
from .predict import Prediction, Predictor


def classification_metrics(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict:
    """Accuracy, macro recall, per-class precision/recall/support and the confusion matrix."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)  # rows: truth, columns: prediction
    for truth, pred in zip(y_true, y_pred):
        matrix[index[truth], index[pred]] += 1
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    hits = np.diag(matrix)
    per_class = {
        label: {"precision": float(hits[i] / predicted[i]) if predicted[i] else 0.0,
                "recall": float(hits[i] / support[i]) if support[i] else 0.0,
                "support": int(support[i])}
        for i, label in enumerate(labels)}
    present = [c for c in per_class.values() if c["support"]]
    return {
        "accuracy": float(hits.sum() / max(matrix.sum(), 1)),
        "macro_recall": float(np.mean([c["recall"] for c in present])) if present else 0.0,
        "per_class": per_class,
        "confusion_matrix": {"labels": labels, "rows_true_cols_pred": matrix.tolist()},
        "n_images": int(matrix.sum()),
    }


@dataclass(frozen=True)
class Scored:
    """One image's truth beside the model's answer; ``loss`` is -log p(truth)."""

    item: Item
    prediction: Prediction

    @property
    def loss(self) -> float:
        return -math.log(max(self.prediction.probabilities[self.item.label], 1e-12))


def score_items(predictor: Predictor, items: list[Item], batch_size: int = 32) -> list[Scored]:
    unknown = sorted({i.label for i in items} - set(predictor.labels))
    if unknown:
        raise ValueError(f"The data has classes the model does not know: {', '.join(unknown)}.")
    scored = []
    for start in range(0, len(items), batch_size):
        batch = items[start:start + batch_size]
        scored += map(Scored, batch, predictor.predict([i.path for i in batch]))
    return scored


def evaluate_items(predictor: Predictor, items: list[Item]) -> dict:
    """Metrics of ``predictor`` on ``items``, plus the model version and the time taken."""
    start = time.perf_counter()
    return metrics_of(score_items(predictor, items), predictor, start)


def metrics_of(scored: list[Scored], predictor: Predictor, start: float) -> dict:
    """:func:`classification_metrics` of scored items, with the version and seconds since ``start``."""
    result = classification_metrics([s.item.label for s in scored],
                                    [s.prediction.label for s in scored], predictor.labels)
    result["model_version"] = predictor.version
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def validation_items(data_dir: Path, params: dict) -> list[Item]:
    """The exact validation split a model was trained with, rebuilt from its card's params."""
    items, is_valid = split_as_trained(scan(data_dir), params)
    return [item for item, valid in zip(items, is_valid) if valid]


def evaluate_dir(data_dir: Path, predictor: Predictor, split: str = "all",
                 params: dict | None = None) -> dict:
    """Evaluate on every readable image of ``data_dir``, or only on its validation split."""
    if split == "valid":
        if params is None:
            raise ValueError("split='valid' needs the model card's training params")
        items = validation_items(data_dir, params)
    elif split == "all":
        items = scan(data_dir).items
    else:
        raise ValueError(f"Unknown split {split!r}; use 'all' or 'valid'.")
    result = evaluate_items(predictor, items)
    result["data_dir"] = str(data_dir)
    result["split"] = split
    return result
