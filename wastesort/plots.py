"""Figures the notebooks share (matplotlib is imported only when one is drawn)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(metrics: dict, ax=None):
    """Draw the confusion matrix of :func:`wastesort.evaluate.classification_metrics`."""
    import matplotlib.pyplot as plt

    labels = metrics["confusion_matrix"]["labels"]
    matrix = np.array(metrics["confusion_matrix"]["rows_true_cols_pred"])
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45)
    ax.set_yticks(range(len(labels)), labels)
    for (i, j), n in np.ndenumerate(matrix):
        ax.text(j, i, n, ha="center", va="center",
                color="white" if n > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"accuracy {metrics['accuracy']:.3f} on {metrics['n_images']} images")
    return ax


def top_losses(scored: list, k: int = 6, columns: int = 3):
    """The ``k`` images the model got most wrong (:class:`wastesort.evaluate.Scored`)."""
    import matplotlib.pyplot as plt

    from .images import load_rgb

    worst = sorted(scored, key=lambda s: s.loss, reverse=True)[:k]
    rows = max(1, -(-len(worst) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, s in zip(axes.flat, worst):
        ax.imshow(load_rgb(s.item.path))
        ax.set_title(f"{s.prediction.label} {s.prediction.confidence:.2f}\n"
                     f"actual {s.item.label}, loss {s.loss:.2f}", fontsize=9)
    fig.tight_layout()
    return fig
