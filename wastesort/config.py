"""Every setting of wastesort, in one place.

Settings come from environment variables prefixed ``WASTESORT_`` so that the same code
runs in a notebook, in CI, on a server and on Hugging Face Spaces without edits. Paths
default to folders of the repository checkout, which is where a fresh clone keeps them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

PREFIX = "WASTESORT_"
REPO_ROOT = Path(__file__).resolve().parent.parent

# The labels of the default task. Training learns labels from the data folders; these only
# serve where no model is at hand (e.g. validating a folder before the first training).
DEFAULT_LABELS = ("cardboard", "glass", "metal", "paper", "plastic", "trash")


def _default_data_dir() -> Path:
    """The trashnet copy that sits beside the repository in this project's workspaces."""
    return REPO_ROOT.parent / "shared" / "datasets" / "trashnet"


def _cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "wastesort"


@dataclass(frozen=True)
class Settings:
    """Run-time settings. Each field ``name`` is read from ``WASTESORT_NAME``."""

    exports_dir: Path = REPO_ROOT / "exports"
    feedback_dir: Path = REPO_ROOT / "feedback"
    data_dir: Path = field(default_factory=_default_data_dir)
    weights_dir: Path = field(default_factory=lambda: _cache_dir() / "weights")
    runtime: str = "onnx"  # "onnx" (default, no torch) or "fastai"
    # Hugging Face Spaces tells Gradio where to listen through GRADIO_SERVER_*; honour it.
    host: str = field(default_factory=lambda: os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    max_upload_mb: float = 10.0
    # Model as a service (wastesort serve) and the app as its client.
    model_url: str = ""  # when set, the app calls this service instead of embedding the model
    model_timeout_s: float = 10.0
    serve_port: int = 8000
    admin_token: str = ""  # the service's admin API stays off without one
    max_batch_size: int = 16
    max_wait_ms: float = 0.0  # extra wait to fill a batch; 0 batches what is already queued
    log_dir: Path = REPO_ROOT / "logs"  # shadow comparisons, traffic statistics
    traffic_keep_days: int = 90  # days of traffic statistics kept for `wastesort monitor`
    # Human review in Label Studio.
    labelstudio_url: str = "http://127.0.0.1:8080"
    labelstudio_token: str = ""  # never printed or logged
    labelstudio_project: str = "wastesort review"

    # Retraining from reviewed feedback (wastesort retrain).
    retrain_min_new: int = 50  # new reviewed images needed before a retrain runs
    retrain_tolerance: float = 0.01  # base accuracy a candidate may lose and still pass
    retrain_on_pass: str = "challenger"  # or "champion" (promote) or "canary"
    canary_percent: float = 10.0

    @property
    def reviewed_dir(self) -> Path:
        """Reviewed images, folder per class: `feedback pull` writes here, retraining reads."""
        return self.feedback_dir / "reviewed"

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Build settings from the environment; explicit overrides win."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get(PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _parse(raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _parse(raw: str, type_name: object) -> object:
    kind = str(type_name)
    if "Path" in kind:
        return Path(raw).expanduser()
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    return raw


def settings() -> Settings:
    return Settings.from_env()
