"""One interface for getting predictions, whatever runs the model.

The app, the evaluation command and (later) the model service all ask a :class:`Predictor`
for predictions. The ONNX Runtime predictor is the default: it needs only numpy, PIL and
onnxruntime, starts in a fraction of a second and is what ships to users. The fastai
predictor runs the very same version through torch, for notebooks and for checking that
both give the same answers.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .images import ImageSource, load_rgb
from .preprocess import to_input
from .registry import CARD, Registry

RUNTIMES = ("onnx", "fastai")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    probabilities: dict[str, float]
    model_version: str

    def to_dict(self) -> dict:
        return asdict(self)


class Predictor(Protocol):
    version: str
    labels: list[str]

    def predict(self, images: Sequence[ImageSource]) -> list[Prediction]:
        """Predictions in input order; raises ``ImageError`` for an unusable image."""


def predictions_from(probs: np.ndarray, labels: list[str], version: str) -> list[Prediction]:
    out = []
    for row in np.asarray(probs, dtype=np.float64):
        best = int(row.argmax())
        out.append(Prediction(label=labels[best], confidence=float(row[best]),
                              probabilities={l: float(p) for l, p in zip(labels, row)},
                              model_version=version))
    return out


class OnnxPredictor:
    """The exported ONNX graph (softmax included) plus the card's preprocessing."""

    def __init__(self, version_dir: Path, threads: int = 0):
        import onnxruntime as ort

        self.card = json.loads((Path(version_dir) / CARD).read_text())
        self.version = self.card["version"]
        self.labels = list(self.card["labels"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(Path(version_dir) / self.card["files"]["onnx"]),
                                            options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def probabilities(self, images: Sequence[ImageSource]) -> np.ndarray:
        batch = to_input([load_rgb(img) for img in images], self.card["preprocessing"])
        return self.session.run(None, {self.input_name: batch})[0]

    def predict(self, images: Sequence[ImageSource]) -> list[Prediction]:
        if not images:
            return []
        return predictions_from(self.probabilities(images), self.labels, self.version)


class FastaiPredictor:
    """The fastai learner of the same version (needs the training extra: torch, fastai)."""

    def __init__(self, version_dir: Path):
        from fastai.learner import load_learner

        self.card = json.loads((Path(version_dir) / CARD).read_text())
        self.version = self.card["version"]
        # load_learner unpickles: only ever load .pkl files this project made.
        self.learn = load_learner(Path(version_dir) / self.card["files"]["fastai"])
        self.labels = [str(v) for v in self.learn.dls.vocab]

    def probabilities(self, images: Sequence[ImageSource]) -> np.ndarray:
        items = [load_rgb(img) for img in images]
        dl = self.learn.dls.test_dl(items, num_workers=0)
        with self.learn.no_bar():
            probs, _ = self.learn.get_preds(dl=dl)
        return probs.numpy()

    def predict(self, images: Sequence[ImageSource]) -> list[Prediction]:
        if not images:
            return []
        return predictions_from(self.probabilities(images), self.labels, self.version)


def load_predictor(registry: Registry, name: str = "champion", runtime: str = "onnx") -> Predictor:
    """The predictor for a version or alias of ``registry``."""
    if runtime not in RUNTIMES:
        raise ValueError(f"Unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}.")
    path = registry.path(name)
    return OnnxPredictor(path) if runtime == "onnx" else FastaiPredictor(path)


class AliasPredictor:
    """Serves whatever version an alias points at, and follows the alias when it moves.

    Each request reads the alias (one small file); when it names another version, that
    version is loaded completely before it replaces the old one, so no request ever sees a
    half-loaded model. A version that fails to load is reported and the old one keeps serving.
    """

    def __init__(self, registry: Registry, alias: str = "champion", runtime: str = "onnx"):
        self.registry, self.alias, self.runtime = registry, alias, runtime
        self._lock = threading.Lock()
        self._current = load_predictor(registry, alias, runtime)
        self._failed = ""  # a version that would not load; not retried on every request

    @property
    def version(self) -> str:
        return self.current().version

    @property
    def labels(self) -> list[str]:
        return self.current().labels

    def current(self) -> Predictor:
        wanted = self.registry.aliases().get(self.alias, self._current.version)
        if wanted not in (self._current.version, self._failed):
            with self._lock:
                if wanted not in (self._current.version, self._failed):
                    try:
                        self._current = load_predictor(self.registry, wanted, self.runtime)
                    except Exception as err:  # keep serving the model we have
                        self._failed = wanted
                        log.error("could not load %s: %s", wanted, err)
        return self._current

    def predict(self, images: Sequence[ImageSource]) -> list[Prediction]:
        return self.current().predict(images)
