"""Label Studio asks the model service for the champion's guess on a task."""

import time

from tests.conftest import EXAMPLES
from tests.review.conftest import TOKEN
from tests.service.conftest import RunningService
from wastesort import review
from wastesort.registry import Registry


def test_label_studio_gets_the_champions_label_from_the_service(project, tmp_path):
    ls, settings, pid = project
    photo = sorted(EXAMPLES.glob("metal/*.jpg"))[0]
    upload = ls.call("POST", f"/api/projects/{pid}/import", params={"commit_to_project": "false"},
                     files={"file": (photo.name, photo.read_bytes())}).json()
    path = ls.call("GET", f"/api/import/file-upload/{upload['file_upload_ids'][0]}").json()["file"]
    task_id = ls.call("POST", f"/api/projects/{pid}/import", params={"return_task_ids": "true"},
                      json=[{"data": {"image": f"/data/{path}"}}]).json()["task_ids"][0]
    service = RunningService(tmp_path, WASTESORT_LABELSTUDIO_URL=settings.labelstudio_url,
                             WASTESORT_LABELSTUDIO_TOKEN=TOKEN)
    try:
        champion = Registry(service.exports).resolve("champion")
        backend = review.connect_backend(ls, pid, service.url)
        assert review.connect_backend(ls, pid, service.url)["id"] == backend["id"]
        ls.call("POST", "/api/dm/actions", params={"id": "retrieve_tasks_predictions", "project": pid},
                json={"selectedItems": {"all": False, "included": [task_id]}})
        deadline = time.monotonic() + 30
        predictions = []
        while not predictions and time.monotonic() < deadline:
            predictions = [p for p in ls.call("GET", f"/api/tasks/{task_id}").json()["predictions"]
                           if p["model_version"] == champion]
            time.sleep(0.5)
        assert predictions, "Label Studio stored no prediction from the service"
        choice = predictions[0]["result"][0]["value"]["choices"][0]
        expected = service.http.post("/v1/predict", files=[("files", (photo.name, photo.read_bytes()))]
                                     ).json()["predictions"][0]["label"]
        assert choice == expected
    finally:
        service.stop()
