"""A real Label Studio server, started by scripts/labelstudio.sh unless one is already up."""

import os
import subprocess
import urllib.request
import uuid

import pytest

from wastesort.config import REPO_ROOT, Settings
from wastesort.review import LabelStudioClient, init_project

URL = os.environ.get("WASTESORT_LABELSTUDIO_URL", "http://127.0.0.1:8080")
TOKEN = os.environ.get("LABEL_STUDIO_USER_TOKEN", "wastesort-dev-token")
LABELS = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]


def _up() -> bool:
    try:
        with urllib.request.urlopen(URL + "/health", timeout=2) as r:
            return b"UP" in r.read()
    except OSError:
        return False


@pytest.fixture(scope="session")
def labelstudio() -> str:
    if not _up():
        subprocess.run([str(REPO_ROOT / "scripts" / "labelstudio.sh"), "start"], check=True,
                       timeout=900)
    return URL


@pytest.fixture
def project(labelstudio) -> tuple[LabelStudioClient, Settings, int]:
    """A fresh review project per test, so tests never see each other's tasks."""
    settings = Settings.from_env(labelstudio_url=labelstudio, labelstudio_token=TOKEN,
                                 labelstudio_project=f"test {uuid.uuid4().hex[:8]}")
    ls = LabelStudioClient(labelstudio, TOKEN)
    return ls, settings, init_project(ls, settings.labelstudio_project, LABELS)["id"]
