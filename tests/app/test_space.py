"""`wastesort space build` makes a folder that runs as a Space: requirements.txt alone suffices."""

import subprocess
import sys

from gradio_client import handle_file

from tests.app.conftest import RunningApp
from tests.conftest import EXAMPLES


def test_the_space_folder_runs_in_a_fresh_venv_from_its_requirements(tmp_path):
    space = tmp_path / "space"
    built = subprocess.run([sys.executable, "-m", "wastesort", "space", "build", str(space)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    files = {p.relative_to(space).as_posix() for p in space.rglob("*") if p.is_file()}
    assert {"app.py", "requirements.txt", "README.md", ".gitattributes",
            "exports/aliases.json"} <= files
    assert not any(f.endswith(".pkl") or "__pycache__" in f for f in files)
    assert any(f.endswith("model.onnx") for f in files) and "lfs" in (space / ".gitattributes").read_text()
    front_matter = (space / "README.md").read_text().split("---")[1]
    for key in ("sdk: gradio", "sdk_version:", "app_file: app.py", "python_version:"):
        assert key in front_matter

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(space / "requirements.txt")],
                   check=True, timeout=900)
    torch_check = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"],
                                 capture_output=True)
    assert torch_check.returncode != 0  # the app runs without torch

    app = RunningApp(tmp_path, app_dir=space, python=str(venv / "bin" / "python"),
                     exports=space / "exports")
    try:
        photo = sorted(EXAMPLES.glob("glass/*.jpg"))[0]
        label, model, status = app.client().predict(handle_file(str(photo)), api_name="/predict")
        assert label["label"] and status == "" and "Model" in model
    finally:
        app.stop()
