"""The app switched to the model service by one setting: same answers; a clear message when it is down."""

import json

from gradio_client import handle_file

from tests.app.conftest import RunningApp
from tests.conftest import EXAMPLES
from tests.service.conftest import RunningService
from wastesort.feedback import FeedbackStore
from wastesort.predict import OnnxPredictor
from wastesort.registry import Registry

PHOTOS = sorted(EXAMPLES.glob("*/*.jpg"))


def traffic_lines(log_dir) -> list[dict]:
    return [json.loads(line) for path in sorted((log_dir / "traffic").glob("*.jsonl"))
            for line in path.read_text().splitlines()]


def test_app_uses_the_service_and_survives_its_death(tmp_path):
    service = RunningService(tmp_path / "svc")
    (tmp_path / "app").mkdir()
    app = RunningApp(tmp_path / "app", WASTESORT_MODEL_URL=service.url,
                     WASTESORT_MODEL_TIMEOUT_S="3")
    try:
        client = app.client()
        expected = OnnxPredictor(Registry(service.exports).path("champion")).predict(PHOTOS)
        for path, want in zip(PHOTOS, expected):
            label, model, status = client.predict(handle_file(str(path)), api_name="/predict")
            assert status == "" and label["label"] == want.label and want.model_version in model
        # The service keeps the traffic statistics; the app does not count them twice.
        assert len(traffic_lines(service.logs)) == len(PHOTOS)
        assert traffic_lines(app.logs) == []

        service.stop()
        label, _, status = client.predict(handle_file(str(PHOTOS[5])), api_name="/predict")
        assert not (label or {}).get("confidences") and "not reachable" in status
        answer = client.predict(handle_file(str(PHOTOS[5])), "glass", "service down",
                                api_name="/flag")
        assert answer.startswith("Saved")
        flag = FeedbackStore(app.feedback, []).flags()[-1]
        assert flag.comment == "service down" and flag.predicted_label is None
        assert (app.feedback / flag.image_path).read_bytes() == PHOTOS[5].read_bytes()
    finally:
        app.stop()
        if service.proc.poll() is None:
            service.stop()
