"""The whole loop, end to end, on a shift the test makes itself.

A small champion is trained on synthetic photos. Then plastic starts to arrive in a new look
(a yellow object on a dark belt) that it gets wrong. Users flag those photos in the running
app; the flags go to the real Label Studio, a reviewer confirms them through its API,
``wastesort retrain`` pulls them, trains a candidate, gates it and promotes it; the app and
the service, never restarted, then answer with the new version and get the new look right.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
from PIL import Image

from tests.app.conftest import RunningApp
from tests.conftest import make_dataset
from tests.review.conftest import LABELS, TOKEN, labelstudio  # noqa: F401  (fixture)
from tests.review.test_review import annotate
from tests.service.conftest import RunningService
from wastesort import review
from wastesort.config import Settings
from wastesort.feedback import FeedbackStore
from wastesort.notebooks import train
from wastesort.registry import Registry

TINY = {"epochs": 4, "freeze_epochs": 1, "size": 64, "bs": 8, "run_lr_find": False}
N_FLAGGED, N_UNSEEN = 16, 8


def new_look(seed: int, size: tuple[int, int] = (96, 72)) -> Image.Image:
    """Plastic, as it now arrives: a yellow object on a dark, noisy belt."""
    rng = np.random.default_rng(seed)
    width, height = size
    arr = np.full((height, width, 3), 40.0) + rng.normal(0, 8, (height, width, 3))
    x0, y0 = rng.integers(0, width // 3), rng.integers(0, height // 3)
    arr[y0:y0 + height // 2, x0:x0 + width // 2] = np.array([235, 205, 40]) + rng.normal(0, 12, 3)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def world(tmp_path_factory, labelstudio):  # noqa: F811
    root = tmp_path_factory.mktemp("loop")
    settings = Settings.from_env(
        data_dir=make_dataset(root / "data", per_class=24), exports_dir=root / "exports",
        feedback_dir=root / "feedback", log_dir=root / "logs", labelstudio_url=labelstudio,
        labelstudio_token=TOKEN, labelstudio_project=f"loop {uuid.uuid4().hex[:8]}")
    champion = train(settings, dict(TINY))
    Registry(settings.exports_dir).promote(champion, reason="test champion")
    photos = root / "new-look"
    photos.mkdir()
    for i in range(N_FLAGGED + N_UNSEEN):
        new_look(seed=5000 + i).save(photos / f"plastic-new-{i}.jpg")
    env = {"WASTESORT_LOG_DIR": str(settings.log_dir)}
    app = RunningApp(root, exports=settings.exports_dir,
                     WASTESORT_FEEDBACK_DIR=str(settings.feedback_dir), **env)
    service = RunningService(root, exports=settings.exports_dir, **env)
    yield settings, champion, sorted(photos.glob("*.jpg")), app, service
    app.stop()
    service.stop()


def app_answers(app: RunningApp, photos: list[Path]) -> list[tuple[str, str]]:
    client = app.client()
    return [(label["label"], model)
            for label, model, _ in (client.predict(handle_file(str(p)), api_name="/predict")
                                    for p in photos)]


def test_reviewed_flags_retrain_gate_and_reach_the_running_app_and_service(world):
    settings, champion, photos, app, service = world
    flagged, unseen = photos[:N_FLAGGED], photos[N_FLAGGED:]

    # The champion gets the new look wrong.
    before = app_answers(app, unseen)
    assert sum(label == "plastic" for label, _ in before) <= N_UNSEEN // 2, before
    assert all(champion in model for _, model in before)

    # Users flag it through the app's API ...
    client = app.client()
    for path in flagged:
        client.predict(handle_file(str(path)), api_name="/predict")
        assert "Saved" in client.predict(handle_file(str(path)), "plastic", "new packaging",
                                         api_name="/flag")
    store = FeedbackStore(settings.feedback_dir, LABELS)
    assert len(store.flags()) == N_FLAGGED

    # ... the flags go to Label Studio and a reviewer confirms every one.
    ls = review.client(settings)
    project = review.init_project(ls, settings.labelstudio_project, LABELS)["id"]
    assert review.sync(store, ls, project).sent == N_FLAGGED
    tasks = ls.tasks(project, [])
    assert len(tasks) == N_FLAGGED
    for task in tasks:
        annotate(ls, task["id"], "plastic")

    # Too few new reviews: the scheduled job does nothing.
    env = {**settings_env(settings), "WASTESORT_RETRAIN_MIN_NEW": str(N_FLAGGED + 1)}
    idle = run_cli(["retrain"], env)
    assert idle.returncode == 0 and "nothing to do: 16 new reviewed images" in idle.stdout
    assert Registry(settings.exports_dir).resolve("champion") == champion

    # Enough: pull, retrain, gate, promote.
    params = ["-p", "epochs=4", "-p", "lr=0.002", "-p", "bs=8", "-p", "tolerance=0.2",
              "-p", "feedback_repeat=3",
              "-p", "on_pass=champion", "-p", "holdback_share=0.25"]
    done = run_cli(["retrain", "--min-new", str(N_FLAGGED), *params], env)
    assert done.returncode == 0, done.stderr[-3000:]
    registry = Registry(settings.exports_dir)
    new = registry.resolve("champion")
    assert new != champion and f"{new} is now champion" in done.stdout, done.stdout
    card = registry.card(new)
    assert card["parent"] == champion and card["notebook"] == "retrain.ipynb"
    assert (registry.path(new) / "retrain.ipynb").is_file()
    gate = card["retrain"]["gate"]
    assert gate["passed"] and gate["candidate"]["holdback"] > gate["champion"]["holdback"]
    assert len(list((settings.reviewed_dir / "plastic").glob("*.jpg"))) == N_FLAGGED

    # The running app and service, never restarted, answer with the new version, correctly.
    after = app_answers(app, unseen)
    assert all(new in model for _, model in after)
    assert sum(label == "plastic" for label, _ in after) >= N_UNSEEN - 1, after
    deadline = time.monotonic() + 10
    while service.http.get("/ready").json()["champion"] != new and time.monotonic() < deadline:
        time.sleep(0.2)
    answers = service.http.post("/v1/predict", files=[("files", (p.name, p.read_bytes(), "image/jpeg"))
                                                      for p in unseen]).json()["predictions"]
    assert {a["model_version"] for a in answers} == {new}
    assert sum(a["label"] == "plastic" for a in answers) >= N_UNSEEN - 1

    # Nothing new since: the next scheduled run does nothing again.
    again = run_cli(["retrain", "--min-new", "1"], env)
    assert "nothing to do: 0 new reviewed images" in again.stdout


def settings_env(settings: Settings) -> dict:
    return {"WASTESORT_DATA_DIR": str(settings.data_dir),
            "WASTESORT_EXPORTS_DIR": str(settings.exports_dir),
            "WASTESORT_FEEDBACK_DIR": str(settings.feedback_dir),
            "WASTESORT_LOG_DIR": str(settings.log_dir),
            "WASTESORT_LABELSTUDIO_URL": settings.labelstudio_url,
            "WASTESORT_LABELSTUDIO_TOKEN": settings.labelstudio_token,
            "WASTESORT_LABELSTUDIO_PROJECT": settings.labelstudio_project}


def run_cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wastesort", *args], capture_output=True,
                          text=True, timeout=900, env={**os.environ, **env})
