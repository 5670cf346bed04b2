"""A real app process on 127.0.0.1, started the way users start it: `python app.py`."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from wastesort.config import REPO_ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # gradio_client: no hub look-ups


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return time.monotonic() - start
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def copy_champion(target: Path) -> Path:
    source = REPO_ROOT / "exports"
    champion = json.loads((source / "aliases.json").read_text())["champion"][-1]
    shutil.copytree(source / champion, target / champion)
    (target / "aliases.json").write_text(json.dumps({"champion": [champion]}))
    return target


class RunningApp:
    """``python app.py`` in ``app_dir`` on a free port, with its own registry and feedback store.

    Without ``exports`` the app gets a private copy of the bundled champion.
    """

    def __init__(self, root: Path, app_dir: Path = REPO_ROOT, python: str = sys.executable,
                 exports: Path | None = None, **env: str):
        self.exports = exports or copy_champion(root / "exports")
        self.feedback = root / "feedback"
        self.logs = root / "logs"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = open(root / "app.log", "w")
        self.proc = subprocess.Popen(
            [python, "app.py"], cwd=app_dir, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "WASTESORT_PORT": str(self.port),
                 "WASTESORT_EXPORTS_DIR": str(self.exports),
                 "WASTESORT_FEEDBACK_DIR": str(self.feedback),
                 "WASTESORT_LOG_DIR": str(self.logs), **env})
        self.startup_seconds = wait_for_http(self.url, self.proc)

    def client(self):
        from gradio_client import Client

        return Client(self.url, verbose=False)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> RunningApp:
    running = RunningApp(tmp_path_factory.mktemp("app"), WASTESORT_MAX_UPLOAD_MB="2")
    yield running
    running.stop()
