"""Flags out to a real Label Studio, reviews back, nothing lost, nothing duplicated."""

import os
import socket
import subprocess
import sys
import threading

from tests.conftest import EXAMPLES
from tests.review.conftest import LABELS, TOKEN
from wastesort import review
from wastesort.feedback import FeedbackStore
from wastesort.images import sha256_bytes
from wastesort.predict import Prediction

PHOTOS = sorted(EXAMPLES.glob("*/*.jpg"))


def flag_photos(store: FeedbackStore, photos, corrected="trash") -> None:
    for i, path in enumerate(photos):
        p = Prediction("glass", 0.6, {l: 0.08 for l in LABELS} | {"glass": 0.6}, "v-test")
        store.add(path.read_bytes(), ".jpg", p, corrected, f"comment {i}", "s")


def cli_env(store: FeedbackStore, settings, token: str) -> dict:
    """The environment for running the `wastesort` CLI against this test's project."""
    return {**os.environ, "WASTESORT_FEEDBACK_DIR": str(store.root),
            "WASTESORT_LABELSTUDIO_URL": settings.labelstudio_url,
            "WASTESORT_LABELSTUDIO_TOKEN": token,
            "WASTESORT_LABELSTUDIO_PROJECT": settings.labelstudio_project}


def annotate(ls, task_id: int, label: str, cancelled: bool = False) -> None:
    ls.call("POST", f"/api/tasks/{task_id}/annotations", json={
        "was_cancelled": cancelled,
        "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                    "value": {"choices": [label]}}]})


def test_init_is_idempotent_and_uses_the_model_labels(project):
    ls, settings, pid = project
    again = review.init_project(ls, settings.labelstudio_project, LABELS)
    assert again["id"] == pid
    config = ls.call("GET", f"/api/projects/{pid}").json()["label_config"]
    assert all(f'value="{l}"' in config for l in LABELS)


def test_sync_makes_one_task_per_image_with_the_prediction(project, tmp_path):
    ls, _, pid = project
    store = FeedbackStore(tmp_path, LABELS)
    flag_photos(store, PHOTOS[:3])
    flag_photos(store, PHOTOS[:1], corrected="metal")  # the same photo flagged twice
    result = review.sync(store, ls, pid)
    assert (result.sent, result.queued, result.error) == (3, 0, "")
    assert review.sync(store, ls, pid).sent == 0
    tasks = ls.tasks(pid, [])
    assert len(tasks) == 3
    by_hash = {t["data"]["sha256"]: t for t in tasks}
    assert set(by_hash) == {sha256_bytes(p.read_bytes()) for p in PHOTOS[:3]}
    first = by_hash[sha256_bytes(PHOTOS[0].read_bytes())]
    assert first["data"]["suggested_label"] == "metal" and len(first["data"]["flag_ids"]) == 2
    model = [p for p in first["predictions"] if p["model_version"] == "v-test"][0]
    assert model["result"][0]["value"]["choices"] == ["glass"] and abs(model["score"] - 0.6) < 1e-6
    assert review.status(store, ls, pid) == {"flags": 4, "images": 3, "sent": 3, "queued": 0,
                                             "reviewed": 0}


def test_two_syncs_at_once_never_duplicate(project, tmp_path):
    ls, settings, pid = project
    store = FeedbackStore(tmp_path / "fb", LABELS)
    flag_photos(store, PHOTOS[:6])
    env = cli_env(store, settings, TOKEN)
    procs = [subprocess.Popen([sys.executable, "-m", "wastesort", "feedback", "sync"], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(ls.tasks(pid, [])) == 6
    # and even a second machine's sync (no local sync state) finds the tasks, not duplicates
    (store.root / "sync.jsonl").unlink()
    assert review.sync(store, ls, pid).already_there == 6
    assert len(ls.tasks(pid, [])) == 6


def test_a_review_comes_back_with_the_right_label_and_the_same_bytes(project, tmp_path):
    ls, _, pid = project
    store = FeedbackStore(tmp_path / "fb", LABELS)
    flag_photos(store, PHOTOS[:2])
    review.sync(store, ls, pid)
    tasks = {t["data"]["sha256"]: t["id"] for t in ls.tasks(pid, [])}
    sha0, sha1 = (sha256_bytes(p.read_bytes()) for p in PHOTOS[:2])
    annotate(ls, tasks[sha0], "paper", cancelled=True)
    annotate(ls, tasks[sha0], "plastic")          # latest non-cancelled wins
    annotate(ls, tasks[sha1], "banana")           # Label Studio does not validate choices
    dest = tmp_path / "reviewed"
    result = review.pull(ls, pid, LABELS, dest)
    assert result.written == 1 and len(result.rejected) == 1 and "banana" in result.rejected[0]
    pulled = dest / "plastic" / f"{sha0}.jpg"
    assert pulled.read_bytes() == PHOTOS[0].read_bytes()
    manifest = review.read_manifest(dest)[sha0]
    assert manifest["label"] == "plastic" and manifest["predicted_label"] == "glass"
    assert manifest["model_version"] == "v-test" and manifest["annotation_id"]
    assert review.pull(ls, pid, LABELS, dest).unchanged == 1  # not fetched again
    assert review.status(store, ls, pid)["reviewed"] == 2


class DyingProxy:
    """Forwards to Label Studio, then drops dead (all connections, the port) after N requests."""

    def __init__(self, target_port: int, allowed_requests: int):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.target_port, self.left = target_port, allowed_requests
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _die(self) -> None:
        for s in [self.server, *self.sockets]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _pipe(self, a: socket.socket, b: socket.socket, from_client: bool) -> None:
        try:
            while data := a.recv(65536):
                if from_client and data.split(b" ", 1)[0] in (b"GET", b"POST"):
                    self.left -= 1
                    if self.left < 0:
                        self._die()
                        return
                b.sendall(data)
        except OSError:
            pass


def test_label_studio_dying_mid_sync_loses_nothing(project, tmp_path):
    ls, settings, pid = project
    store = FeedbackStore(tmp_path / "fb", LABELS)
    flag_photos(store, PHOTOS[:5])
    port = int(settings.labelstudio_url.rsplit(":", 1)[1])
    proxy = DyingProxy(port, allowed_requests=10)  # a few tasks, then the server "dies"
    broken = review.sync(store, review.LabelStudioClient(proxy.url, TOKEN), pid)
    assert "not reachable" in broken.error and 0 < broken.queued <= 5
    assert len(store.flags()) == 5
    assert review.status(store, None, None)["queued"] == broken.queued
    healed = review.sync(store, ls, pid)
    assert healed.error == "" and healed.queued == 0
    assert len(ls.tasks(pid, [])) == 5  # every image once, none twice


def test_a_wrong_token_or_a_down_server_is_a_clear_error(project, tmp_path):
    ls, settings, pid = project
    store = FeedbackStore(tmp_path / "fb", LABELS)
    flag_photos(store, PHOTOS[:1])
    env = cli_env(store, settings, "wrong-token")
    run = lambda *a, **e: subprocess.run([sys.executable, "-m", "wastesort", *a],  # noqa: E731
                                         env={**env, **e}, capture_output=True, text=True)
    wrong = run("feedback", "sync")
    assert wrong.returncode == 1 and "refused the token" in wrong.stderr
    assert "wrong-token" not in wrong.stderr + wrong.stdout
    down = run("feedback", "sync", WASTESORT_LABELSTUDIO_URL="http://127.0.0.1:9")
    assert down.returncode == 1 and "not reachable" in down.stderr
    status = run("feedback", "status", WASTESORT_LABELSTUDIO_URL="http://127.0.0.1:9")
    assert "queued 1" in status.stdout
