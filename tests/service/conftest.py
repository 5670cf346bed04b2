"""A real `wastesort serve` process on a free port of 127.0.0.1."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.app.conftest import copy_champion, free_port, wait_for_http

TOKEN = "test-admin-token"


class RunningService:
    def __init__(self, root: Path, exports: Path | None = None, **env: str):
        self.exports = exports or copy_champion(root / "exports")
        self.logs = root / "logs"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(root / f"service-{self.port}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wastesort", "serve", "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "WASTESORT_EXPORTS_DIR": str(self.exports),
                 "WASTESORT_LOG_DIR": str(self.logs), **env})
        wait_for_http(self.url + "/ready", self.proc)
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def admin(self, path: str, token: str = TOKEN, **body) -> httpx.Response:
        return self.http.post(path, json=body, headers={"Authorization": f"Bearer {token}"})

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> RunningService:
    running = RunningService(tmp_path_factory.mktemp("service"), WASTESORT_ADMIN_TOKEN=TOKEN,
                             WASTESORT_MAX_UPLOAD_MB="2")
    yield running
    running.stop()
