"""The inference service over real HTTP: predictions, bad input, metrics, admin, rollouts."""

import base64
import io
import json
import threading
import time
from collections import Counter

import pytest
from PIL import Image

from tests.conftest import EXAMPLES, clone_version, jpeg_bytes, photo
from tests.service.conftest import RunningService
from tests.service.test_app_with_service import traffic_lines
from wastesort.predict import OnnxPredictor
from wastesort.registry import Registry

PHOTOS = sorted(EXAMPLES.glob("*/*.jpg"))


def files(*paths):
    return [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def second_version(service, suffix: str) -> str:
    """Another registered version with the champion's files (made once per service)."""
    registry = Registry(service.exports)
    version = registry.resolve("champion") + suffix
    if version not in registry.versions():
        clone_version(service.exports, registry.resolve("champion"), version)
    return version


@pytest.fixture
def challenger(service):
    """A challenger version for a test; rollout and aliases are put back afterwards."""
    version = second_version(service, "-challenger")
    assert service.admin("/v1/admin/promote", version=version, alias="challenger").status_code == 200
    yield version
    assert service.admin("/v1/admin/rollout", mode="off").status_code == 200


def test_health_ready_models_and_docs(service):
    assert service.http.get("/health").json() == {"status": "ok"}
    champion = Registry(service.exports).resolve("champion")
    assert service.http.get("/ready").json() == {"ready": True, "champion": champion}
    models = service.http.get("/v1/models").json()
    assert models["aliases"]["champion"] == champion and models["rollout"]["mode"] == "off"
    assert len(models["labels"]) == 6
    assert service.http.get("/docs").status_code == 200
    assert "/v1/predict" in service.http.get("/openapi.json").json()["paths"]


def test_predicts_one_and_several_images_like_the_embedded_model(service):
    registry = Registry(service.exports)
    expected = OnnxPredictor(registry.path("champion")).predict(PHOTOS)
    one = service.http.post("/v1/predict", files=files(PHOTOS[0])).json()
    assert one["request_id"] and len(one["predictions"]) == 1
    assert one["predictions"][0]["label"] == expected[0].label
    many = service.http.post("/v1/predict", files=files(*PHOTOS)).json()["predictions"]
    assert [p["label"] for p in many] == [e.label for e in expected]
    for got, want in zip(many, expected):
        assert got["confidence"] == pytest.approx(want.confidence, abs=1e-5)
        assert got["model_version"] == registry.resolve("champion")
        assert set(got["probabilities"]) == set(want.probabilities)


def test_each_served_prediction_is_counted_for_drift_monitoring(service):
    before = traffic_lines(service.logs)
    answer = service.http.post("/v1/predict", files=files(*PHOTOS[:3])).json()["predictions"]
    added = traffic_lines(service.logs)[len(before):]
    assert [(e["label"], e["source"]) for e in added] == [(a["label"], "service") for a in answer]
    assert all(e["model_version"] == answer[0]["model_version"] for e in added)


def test_json_base64_works_too(service):
    data = base64.b64encode(PHOTOS[2].read_bytes()).decode()
    response = service.http.post("/v1/predict", json={"images": [data, "data:image/jpeg;base64," + data]})
    assert response.status_code == 200
    labels = [p["label"] for p in response.json()["predictions"]]
    assert labels[0] == labels[1]


def _png(img):
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name, data, status, message", [
    ("text.jpg", b"hello", 422, "not an image"),
    ("empty.jpg", b"", 422, "empty"),
    ("cut.jpg", jpeg_bytes(photo((9, 9, 9), 1, (600, 400)))[:3000], 422, "truncated"),
    ("bomb.png", _png(Image.new("1", (20000, 20000))), 422, "too large"),
    ("big.bmp", b"BM" + bytes(3 * 1024 * 1024), 413, "limit is 2 MB"),
])
def test_bad_images_get_a_clear_4xx(service, name, data, status, message):
    response = service.http.post("/v1/predict", files=[("files", (name, data, "image/jpeg"))])
    assert response.status_code == status
    assert message in response.json()["error"] and name in response.json()["error"]


def test_malformed_requests_get_a_clear_4xx(service):
    assert service.http.post("/v1/predict", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    assert service.http.post("/v1/predict", json={"images": ["%%%not-base64"]}).status_code == 400
    assert service.http.post("/v1/predict", json={"nothing": 1}).status_code == 400
    assert service.http.post("/v1/predict", files={"other": ("a.txt", b"x")}).status_code == 400
    assert service.http.get("/health").status_code == 200


def test_metrics_count_requests_predictions_and_batches(service):
    service.http.post("/v1/predict", files=files(PHOTOS[0]))
    service.http.post("/v1/predict", files=[("files", ("x.jpg", b"nope", "image/jpeg"))])
    text = service.http.get("/metrics").text
    assert 'wastesort_requests_total{status="200"}' in text
    assert 'wastesort_requests_total{status="422"}' in text
    assert 'wastesort_errors_total{reason="bad_input"}' in text
    assert "wastesort_request_latency_seconds_bucket" in text and "wastesort_batch_size_count" in text
    assert 'wastesort_predictions_total{label="' in text and "wastesort_confidence_sum" in text


def test_admin_needs_the_token(service):
    champion = Registry(service.exports).resolve("champion")
    assert service.http.post("/v1/admin/promote", json={"version": champion}).status_code == 401
    assert service.admin("/v1/admin/promote", token="wrong", version=champion).status_code == 401
    assert service.admin("/v1/admin/rollout", mode="sideways").status_code == 409


def test_no_token_means_no_admin_api(tmp_path):
    bare = RunningService(tmp_path)
    try:
        assert bare.admin("/v1/admin/rollout", mode="off").status_code == 404
        assert bare.http.post("/v1/predict", files=files(PHOTOS[0])).status_code == 200
    finally:
        bare.stop()


def test_canary_sends_about_the_asked_share(service, challenger):
    assert service.admin("/v1/admin/rollout", mode="canary", percent=30).json()["rollout"]["percent"] == 30
    versions = Counter(service.http.post("/v1/predict", files=files(PHOTOS[0])).json()
                       ["predictions"][0]["model_version"] for _ in range(300))
    assert 0.2 <= versions[challenger] / 300 <= 0.4, versions


def test_ab_is_sticky_per_client(service, challenger):
    service.admin("/v1/admin/rollout", mode="ab", percent=50)
    seen = {}
    for client in range(20):
        seen[client] = {service.http.post("/v1/predict", files=files(PHOTOS[1]),
                                          headers={"X-Client-Id": f"user-{client}"})
                        .json()["predictions"][0]["model_version"] for _ in range(4)}
    assert all(len(v) == 1 for v in seen.values())
    assert {v for s in seen.values() for v in s} == {challenger, Registry(service.exports).resolve("champion")}


def test_shadow_answers_are_logged_never_returned(service, challenger):
    service.admin("/v1/admin/rollout", mode="shadow", percent=100)
    champion = Registry(service.exports).resolve("champion")
    for _ in range(20):
        p = service.http.post("/v1/predict", files=files(PHOTOS[4])).json()["predictions"][0]
        assert p["model_version"] == champion
    deadline = time.monotonic() + 10
    log = service.logs / "shadow.jsonl"
    while (not log.exists() or len(log.read_text().splitlines()) < 20) and time.monotonic() < deadline:
        time.sleep(0.1)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) >= 20 and all(e["challenger"] == challenger for e in entries)
    assert 'wastesort_shadow_total{agree="true"}' in service.http.get("/metrics").text


def test_swapping_the_champion_20_times_under_load_fails_no_request(service):
    registry = Registry(service.exports)
    first = registry.resolve("champion")
    second = second_version(service, "-swap")
    failures, versions, stop = [], Counter(), threading.Event()

    def load():
        import httpx
        with httpx.Client(base_url=service.url, timeout=30) as http:
            while not stop.is_set():
                r = http.post("/v1/predict", files=files(PHOTOS[0]))
                if r.status_code != 200:
                    failures.append(r.status_code)
                else:
                    versions[r.json()["predictions"][0]["model_version"]] += 1

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        for i in range(20):
            target = second if i % 2 == 0 else first
            assert service.admin("/v1/admin/promote", version=target).status_code == 200
            time.sleep(0.15)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert versions[first] > 0 and versions[second] > 0
    assert registry.resolve("champion") == first
