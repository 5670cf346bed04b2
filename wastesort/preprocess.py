"""The model's input, computed from a card's ``preprocessing`` with numpy and PIL alone.

This is what lets the app run without torch: it reproduces fastai's validation pipeline
(``load_rgb``, ``Resize(method=squish)`` with PIL bilinear, /255, normalise) exactly, and a
test holds it to fastai's own output on real photos.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def preprocessing_spec(size: int, mean: list[float], std: list[float]) -> dict:
    """The card's description of how an image becomes the model's input."""
    return {
        "decode": "wastesort.images.load_rgb (EXIF transpose, alpha over white, 8-bit RGB)",
        "resize": "squish",
        "size": [size, size],  # height, width
        "interpolation": "bilinear",
        "scale": 1 / 255,
        "mean": mean,
        "std": std,
        "layout": "NCHW",
        "dtype": "float32",
    }


def to_input(images: list[Image.Image], spec: dict) -> np.ndarray:
    """A float32 NCHW batch from RGB pictures (as returned by ``load_rgb``)."""
    if spec["resize"] != "squish":
        raise ValueError(f"unsupported resize method {spec['resize']!r}")
    height, width = spec["size"]
    resample = _RESAMPLE[spec["interpolation"]]
    batch = np.stack([np.asarray(img.resize((width, height), resample), dtype=np.float32)
                      for img in images])
    mean = np.asarray(spec["mean"], dtype=np.float32)
    std = np.asarray(spec["std"], dtype=np.float32)
    batch = (batch * np.float32(spec["scale"]) - mean) / std
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
