"""The web page: a photo in, the class and its confidence out, and "wrong, it is X" back.

:func:`create_app` builds the Gradio Blocks from a :class:`~wastesort.predict.Predictor`
and a :class:`~wastesort.feedback.FeedbackStore`; ``app.py`` at the repository root is the
entry point that Hugging Face Spaces and ``python app.py`` run.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no outside calls (before gradio)

from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402

from .client import ServicePredictor, ServiceUnavailable  # noqa: E402
from .config import REPO_ROOT, Settings  # noqa: E402
from .feedback import FeedbackStore  # noqa: E402
from .images import ImageError, sha256_bytes  # noqa: E402
from .monitor import TrafficLog  # noqa: E402
from .predict import AliasPredictor, Prediction, Predictor  # noqa: E402
from .registry import Registry  # noqa: E402

EXAMPLES_DIR = REPO_ROOT / "examples"

HOW_IT_WORKS = """
**How it works.** A small convolutional network (MobileNetV2, pretrained on ImageNet and
fine-tuned with fastai on the TrashNet photos) looks at your photo and says which of six
bins it belongs to. It was trained on single objects on a plain background, so it does
best on one item, well lit, filling most of the picture.

**Wrong answer?** Pick the right class and send it. The photo and your correction are
stored, reviewed by a person, and used to train the next model.
"""


class PhotoInput(gr.Image):
    """``gr.Image`` that hands any upload to our decoder instead of failing inside Gradio.

    Gradio opens uploads with PIL before our code runs, so a broken file or a
    decompression bomb would end in a generic "Error". Passing the file through lets
    :func:`wastesort.images.load_rgb` say exactly what is wrong with it.
    """

    is_template = True  # rendered by the standard Image front end

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception:
            return payload.path if payload is not None else None


def create_app(settings: Settings, predictor: Predictor | None = None,
               store: FeedbackStore | None = None) -> gr.Blocks:
    predictor = predictor or _predictor(settings)
    store = store or FeedbackStore(settings.feedback_dir, predictor.labels)
    # With a model service, the service keeps the traffic statistics; embedded, we do.
    traffic = (None if settings.model_url
               else TrafficLog(settings.log_dir, "app", settings.traffic_keep_days))

    def predict(image_path: str | None, request: gr.Request):
        if not image_path:
            return None, model_text(), "", None
        try:
            prediction = predictor.predict([Path(image_path)])[0]
        except (ImageError, ServiceUnavailable) as err:
            return None, model_text(), f"⚠️ {err}", None
        if traffic:
            traffic.record([prediction])
        state = {"sha256": sha256_bytes(Path(image_path).read_bytes()),
                 "prediction": prediction.to_dict()}
        return prediction.probabilities, model_text(prediction.model_version), "", state

    def flag(image_path: str | None, corrected: str | None, comment: str, state: dict | None,
             request: gr.Request) -> str:
        if not image_path:
            return "⚠️ Upload a photo first, then tell us what it is."
        if not corrected:
            return "⚠️ Pick the correct class from the list."
        image = Path(image_path).read_bytes()
        prediction = None
        if state and state.get("sha256") == sha256_bytes(image):
            prediction = Prediction(**state["prediction"])
        try:
            saved = store.add(image, Path(image_path).suffix, prediction, corrected,
                              comment or "", getattr(request, "session_hash", "") or "")
        except ValueError as err:
            return f"⚠️ {err}"
        return f"Saved, thank you: this is **{saved.corrected_label}** (ref. `{saved.id[:8]}`)."

    def model_text(version: str | None = None) -> str:
        return f"Model `{version or predictor.version}`"

    examples = [[str(p)] for p in sorted(EXAMPLES_DIR.glob("*/*.jpg"))]
    with gr.Blocks(title="wastesort") as demo:
        gr.Markdown("# ♻️ wastesort\nWhich bin does it go in? Upload or snap a photo of one item.")
        with gr.Row():
            with gr.Column():
                image = PhotoInput(type="filepath", sources=["upload", "webcam", "clipboard"],
                                   label="Photo", elem_id="input-image", height=360)
                if examples:
                    gr.Examples(examples, inputs=[image], label="Or try one of these",
                                examples_per_page=len(examples))
            with gr.Column():
                label = gr.Label(num_top_classes=len(predictor.labels), label="Prediction",
                                 elem_id="pred-label")
                model = gr.Markdown(model_text(), elem_id="model-version")
                status = gr.Markdown(elem_id="status")
                with gr.Group():
                    gr.Markdown("**Wrong prediction?**")
                    corrected = gr.Dropdown(predictor.labels, value=None, label="It is actually",
                                            elem_id="correct-class")
                    comment = gr.Textbox(label="Comment (optional)", max_lines=3,
                                         elem_id="comment")
                    send = gr.Button("Send correction", elem_id="flag-btn")
                    flag_status = gr.Markdown(elem_id="flag-status")
        gr.Markdown(HOW_IT_WORKS)
        state = gr.State()
        image.change(predict, [image], [label, model, status, state], api_name="predict",
                     concurrency_limit=2)
        send.click(flag, [image, corrected, comment, state], [flag_status], api_name="flag",
                   concurrency_limit=16)
    return demo


def _predictor(settings: Settings) -> Predictor:
    """The model service when ``WASTESORT_MODEL_URL`` is set, else the embedded champion."""
    if settings.model_url:
        return ServicePredictor(settings.model_url, settings.model_timeout_s)
    return AliasPredictor(Registry(settings.exports_dir), "champion", settings.runtime)


def launch(settings: Settings | None = None, **kwargs) -> None:
    settings = settings or Settings.from_env()
    demo = create_app(settings)
    demo.queue(default_concurrency_limit=2).launch(
        server_name=settings.host, server_port=settings.port, theme=gr.themes.Soft(),
        max_file_size=f"{settings.max_upload_mb:g}mb", allowed_paths=[str(EXAMPLES_DIR)],
        show_error=True, **kwargs)
