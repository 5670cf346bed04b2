"""The app through its API, as gradio_client users (and the browser) reach it."""

import io
import json

import pytest
from gradio_client import handle_file
from PIL import Image

from tests.conftest import EXAMPLES, clone_version, jpeg_bytes, photo
from wastesort.feedback import FeedbackStore
from wastesort.images import sha256_bytes
from wastesort.predict import OnnxPredictor
from wastesort.registry import Registry

EXAMPLE_FILES = sorted(EXAMPLES.glob("*/*.jpg"))


def top_label(value: dict) -> str:
    return value["label"]


def test_predicts_the_examples_like_the_embedded_model(app):
    client = app.client()
    registry = Registry(app.exports)
    expected = OnnxPredictor(registry.path("champion")).predict(EXAMPLE_FILES)
    for path, want in zip(EXAMPLE_FILES, expected):
        label, model, status = client.predict(handle_file(str(path)), api_name="/predict")
        assert top_label(label) == want.label
        confidences = {c["label"]: c["confidence"] for c in label["confidences"]}
        assert set(confidences) == set(want.probabilities)
        assert confidences[want.label] == pytest.approx(want.confidence, abs=1e-6)
        assert registry.resolve("champion") in model and status == ""
    counted = [json.loads(line) for path in (app.logs / "traffic").glob("*.jsonl")
               for line in path.read_text().splitlines()]
    assert [(c["label"], c["source"]) for c in counted[:len(expected)]] == [
        (e.label, "app") for e in expected]  # the drift monitor's traffic statistics


def test_a_flag_is_stored_with_the_prediction_and_the_image(app):
    client = app.client()
    path = EXAMPLE_FILES[3]
    label, _, _ = client.predict(handle_file(str(path)), api_name="/predict")
    answer = client.predict(handle_file(str(path)), "trash", "looks dirty", api_name="/flag")
    assert answer.startswith("Saved")
    store = FeedbackStore(app.feedback, [])
    flag = store.flags()[-1]
    assert flag.corrected_label == "trash" and flag.comment == "looks dirty"
    assert flag.predicted_label == top_label(label)
    assert flag.model_version == Registry(app.exports).resolve("champion")
    assert flag.probabilities and abs(sum(flag.probabilities.values()) - 1) < 1e-4
    assert flag.session_id and flag.id[:8] in answer
    assert (app.feedback / flag.image_path).read_bytes() == path.read_bytes()
    assert flag.image_sha256 == sha256_bytes(path.read_bytes())


def test_flag_needs_a_photo_and_a_valid_class(app):
    client = app.client()
    assert "Upload a photo first" in client.predict(None, "glass", "", api_name="/flag")
    assert "Pick the correct class" in client.predict(handle_file(str(EXAMPLE_FILES[0])), None, "",
                                                      api_name="/flag")
    before = len(FeedbackStore(app.feedback, []).flags())
    with pytest.raises(Exception, match="banana|choices"):
        client.predict(handle_file(str(EXAMPLE_FILES[0])), "banana", "", api_name="/flag")
    assert len(FeedbackStore(app.feedback, []).flags()) == before


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _gif() -> bytes:
    frames = [photo((i * 60, 10, 10), seed=i).convert("P") for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


BAD_INPUTS = {
    "not-an-image.jpg": (lambda: b"hello, this is text", "not an image"),
    "empty.jpg": (lambda: b"", "empty"),
    "truncated.jpg": (lambda: jpeg_bytes(photo((9, 9, 9), 1, (600, 400)))[:3000], "truncated"),
    "animated.gif": (_gif, "Animated"),
    "bomb.png": (lambda: _png(Image.new("1", (20000, 20000))), "too large"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_inputs_get_a_clear_message_and_the_app_stays_up(app, tmp_path, name):
    make, message = BAD_INPUTS[name]
    path = tmp_path / name
    path.write_bytes(make())
    client = app.client()
    label, _, status = client.predict(handle_file(str(path)), api_name="/predict")
    assert label is None or not label.get("confidences")
    assert status.startswith("⚠️") and message in status
    ok, _, _ = client.predict(handle_file(str(EXAMPLE_FILES[0])), api_name="/predict")
    assert ok["label"]


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "I;16"])
def test_odd_modes_are_classified(app, tmp_path, mode):
    img = Image.open(EXAMPLE_FILES[0]).convert("RGB" if mode == "I;16" else mode)
    if mode == "I;16":
        img = img.convert("L").point(lambda v: v * 257, mode="I").convert("I;16")
    path = tmp_path / ("odd.tiff" if mode == "CMYK" else "odd.png")
    img.save(path)
    label, _, status = app.client().predict(handle_file(str(path)), api_name="/predict")
    assert status == "" and label["label"]


def test_an_upload_over_the_limit_is_refused(app, tmp_path):
    path = tmp_path / "huge.bmp"
    Image.new("RGB", (1200, 1000), (200, 30, 30)).save(path)  # 3.6 MB, limit is 2 MB
    with pytest.raises(Exception, match="(?i)size|large|limit"):
        app.client().predict(handle_file(str(path)), api_name="/predict")
    ok, _, _ = app.client().predict(handle_file(str(EXAMPLE_FILES[0])), api_name="/predict")
    assert ok["label"]


def test_promoting_a_version_switches_the_running_app(app):
    registry = Registry(app.exports)
    old = registry.resolve("champion")
    new = clone_version(app.exports, old, old + "-retrained")
    client = app.client()
    try:
        registry.promote(new, reason="hot reload test")
        _, model, _ = client.predict(handle_file(str(EXAMPLE_FILES[1])), api_name="/predict")
        assert new in model
        registry.rollback(reason="hot reload test")
        _, model, _ = client.predict(handle_file(str(EXAMPLE_FILES[1])), api_name="/predict")
        assert new not in model and old in model
    finally:
        if registry.resolve("champion") != old:
            registry.rollback()
