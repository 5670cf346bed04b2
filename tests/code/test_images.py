"""Decoding: every odd image becomes upright 8-bit RGB or a clear ImageError."""

import io

import numpy as np
import pytest
from PIL import Image

from tests.conftest import jpeg_bytes, photo
from wastesort.images import ImageError, inspect_image, load_rgb


def png_bytes(img: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kwargs)
    return buf.getvalue()


def test_plain_jpeg_loads_as_rgb():
    img = load_rgb(jpeg_bytes(photo((10, 200, 10), seed=1)))
    assert img.mode == "RGB" and img.size == (96, 72)


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "not an image"),
])
def test_non_images_get_a_clear_message(data, message):
    with pytest.raises(ImageError, match=message):
        load_rgb(data)


def test_truncated_jpeg_is_refused():
    data = jpeg_bytes(photo((10, 200, 10), seed=1, size=(400, 300)))
    with pytest.raises(ImageError, match="damaged or truncated"):
        load_rgb(data[: len(data) // 2])


def test_exif_orientation_is_applied():
    img = photo((200, 10, 10), seed=2, size=(120, 60))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = jpeg_bytes(img, exif=exif.tobytes())
    assert load_rgb(data).size == (60, 120)
    info = inspect_image(data)
    assert info.exif_rotated and (info.width, info.height) == (60, 120)


def test_cmyk_becomes_rgb():
    cmyk = photo((200, 10, 10), seed=3).convert("CMYK")
    out = load_rgb(jpeg_bytes(cmyk))
    assert out.mode == "RGB"
    assert np.asarray(out).mean() > 50  # not an all-black misreading


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    arr = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    out = np.asarray(load_rgb(png_bytes(Image.fromarray(arr, mode="I;16"))))
    assert out.shape == (64, 64, 3)
    assert out.min() == 0 and out.max() == 255 and 100 < out.mean() < 155


def test_transparency_is_flattened_onto_white():
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))  # fully transparent red
    out = np.asarray(load_rgb(png_bytes(rgba)))
    assert (out == 255).all()


def test_palette_and_greyscale_modes_load():
    for mode in ("P", "L", "1", "LA"):
        img = photo((10, 10, 200), seed=4).convert(mode)
        assert load_rgb(png_bytes(img)).mode == "RGB"


def test_animated_gif_is_refused():
    frames = [photo((i * 50, 0, 0), seed=i).convert("P") for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="Animated"):
        load_rgb(buf.getvalue())


def test_too_many_pixels_is_refused_before_decoding():
    with pytest.raises(ImageError, match="too large"):
        load_rgb(png_bytes(Image.new("L", (200, 200))), max_pixels=10_000)


def test_tiny_image_is_refused():
    with pytest.raises(ImageError, match="too small"):
        load_rgb(png_bytes(Image.new("RGB", (8, 8))))
