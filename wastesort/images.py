"""Turning whatever a user or a dataset hands us into a plain RGB picture, or a clear error.

Training, evaluation, the app and the service all decode images here, so a photo is seen
the same way everywhere: EXIF orientation applied (phones store portraits sideways),
transparency flattened onto white (the trashnet backdrop), 16-bit and CMYK scaled to 8-bit
RGB. Anything we cannot honestly turn into one picture raises :class:`ImageError` with a
message meant for the person who sent it.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MIN_SIDE = 32  # smaller pictures hold too little to classify
DEFAULT_MAX_PIXELS = 40_000_000
_EXIF_ORIENTATION = 0x0112

ImageSource = Path | str | bytes | Image.Image


class ImageError(ValueError):
    """An input that is not one usable picture; the message says why in plain words."""


@dataclass(frozen=True)
class ImageInfo:
    """What a data check needs to know about one file, without keeping its pixels."""

    width: int
    height: int
    mode: str
    exif_rotated: bool
    animated: bool


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_bytes(Path(path).read_bytes())


def _open(source: ImageSource, max_pixels: int) -> Image.Image:
    """Open lazily and check the header before any pixel is decoded."""
    if isinstance(source, Image.Image):
        img = source
    else:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        if not data:
            raise ImageError("The file is empty (0 bytes).")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ImageError("The image is too large (it claims more pixels than the limit of "
                             f"{max_pixels / 1e6:.0f} megapixels).") from err
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise ImageError("This file is not an image we can read "
                             f"(JPEG, PNG, WebP, BMP, GIF or TIFF). ({err})") from err
    width, height = img.size
    if width * height > max_pixels:
        raise ImageError(f"The image is too large ({width}x{height} pixels); "
                         f"the limit is {max_pixels / 1e6:.0f} megapixels.")
    return img


def inspect_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Decode fully (so truncated files fail here, not mid-training) and describe."""
    img = _open(source, max_pixels)
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"The image is damaged or truncated ({err}).") from err
    orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    width, height = img.size
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return ImageInfo(width=width, height=height, mode=img.mode,
                     exif_rotated=orientation not in (None, 1),
                     animated=getattr(img, "n_frames", 1) > 1)


def load_rgb(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """One upright 8-bit RGB picture, or :class:`ImageError`.

    Exported fastai models call this as their first transform, so it must stay importable
    under this name for saved models to load.
    """
    img = _open(source, max_pixels)
    if getattr(img, "n_frames", 1) > 1:
        raise ImageError("Animated images are not supported: send a single photo.")
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"The image is damaged or truncated ({err}).") from err
    if min(img.size) < MIN_SIDE:
        raise ImageError(f"The image is too small ({img.width}x{img.height} pixels); "
                         f"send at least {MIN_SIDE}x{MIN_SIDE}.")
    return _to_rgb(img)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16/32-bit greyscale: PIL's convert() clips at 255, so scale by the real range.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray((arr / top * 255).round().clip(0, 255).astype(np.uint8))
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA"))
    return img.convert("RGB")
