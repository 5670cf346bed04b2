"""Shared fixtures: images and datasets the tests make themselves, and the real ones we ship."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wastesort.config import REPO_ROOT, Settings

TRASHNET = Settings().data_dir
EXAMPLES = REPO_ROOT / "examples"
CLASS_COLOURS = {"cardboard": (150, 110, 60), "glass": (60, 170, 90), "metal": (150, 150, 160),
                 "paper": (235, 235, 225), "plastic": (40, 90, 200), "trash": (30, 30, 30)}


def photo(colour: tuple[int, int, int], seed: int, size: tuple[int, int] = (96, 72)) -> Image.Image:
    """A photo-like picture: a coloured object on a light, noisy background."""
    rng = np.random.default_rng(seed)
    width, height = size
    arr = np.full((height, width, 3), 225, dtype=np.float64) + rng.normal(0, 8, (height, width, 3))
    x0, y0 = rng.integers(0, width // 3), rng.integers(0, height // 3)
    arr[y0:y0 + height // 2, x0:x0 + width // 2] = np.array(colour) + rng.normal(0, 12, 3)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def jpeg_bytes(img: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def make_dataset(root: Path, per_class: int = 8, size: tuple[int, int] = (96, 72)) -> Path:
    """A folder-per-class dataset of synthetic photos, one colour per class."""
    for c, (label, colour) in enumerate(CLASS_COLOURS.items()):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            photo(colour, seed=100 * c + i, size=size).save(root / label / f"{label}{i}.jpg")
    return root


def real_images(per_class: int = 4) -> list[tuple[Path, str]]:
    """Real trashnet photos when the shared dataset is beside the repo, else the shipped examples."""
    if TRASHNET.is_dir():
        return [(path, label) for label in sorted(p.name for p in TRASHNET.iterdir() if p.is_dir())
                for path in sorted((TRASHNET / label).glob("*.jpg"))[::37][:per_class]]
    return [(path, path.parent.name) for path in sorted(EXAMPLES.glob("*/*.jpg"))]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data")


@pytest.fixture
def champion_exports(tmp_path: Path) -> Path:
    """A private registry holding a copy of the bundled champion, free to promote and roll back."""
    source = REPO_ROOT / "exports"
    target = tmp_path / "exports"
    target.mkdir()
    champion = json.loads((source / "aliases.json").read_text())["champion"][-1]
    shutil.copytree(source / champion, target / champion)
    (target / "aliases.json").write_text(json.dumps({"champion": [champion]}))
    return target


def clone_version(exports: Path, source: str, new: str) -> str:
    """A new registry version with the same model files (enough to test switching)."""
    staging = exports / f".clone-{new}"
    shutil.copytree(exports / source, staging)
    card = json.loads((staging / "card.json").read_text())
    card["version"], card["parent"] = new, source
    (staging / "card.json").write_text(json.dumps(card))
    staging.rename(exports / new)
    return new
