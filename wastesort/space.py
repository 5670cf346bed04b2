"""Assembling exactly what a Hugging Face Space needs to run the app.

A Space runs ``python app.py`` after ``pip install -r requirements.txt``, so it needs the
app, the package, the champion's ONNX model and card, the example photos, the
requirements and the README (whose front matter configures the Space). Training files
(the fastai ``.pkl``, notebooks, tests) stay behind; model files go through Git LFS.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .config import REPO_ROOT
from .registry import CARD, FILES, Registry

TOP_LEVEL = ("app.py", "requirements.txt", "README.md")
GITATTRIBUTES = "*.onnx filter=lfs diff=lfs merge=lfs -text\n*.pkl filter=lfs diff=lfs merge=lfs -text\n"


def build_space(target: Path, registry: Registry) -> str:
    """Write the Space into ``target`` (new or empty); returns the champion's version."""
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} is not empty; give a new folder for the Space.")
    target.mkdir(parents=True, exist_ok=True)
    for name in TOP_LEVEL:
        shutil.copy2(REPO_ROOT / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO_ROOT / "wastesort", target / "wastesort", ignore=ignore)
    shutil.copytree(REPO_ROOT / "examples", target / "examples", ignore=ignore)
    champion = registry.resolve("champion")
    model_dir = target / "exports" / champion
    model_dir.mkdir(parents=True)
    notebook = registry.card(champion).get("notebook") or FILES["notebook"]
    for name in (CARD, FILES["onnx"], notebook):
        if (registry.path(champion) / name).exists():
            shutil.copy2(registry.path(champion) / name, model_dir / name)
    (target / "exports" / "aliases.json").write_text(json.dumps({"champion": [champion]}, indent=2))
    (target / ".gitattributes").write_text(GITATTRIBUTES)
    return champion
