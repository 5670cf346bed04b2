"""nbval smoke run over every notebook, with papermill's parameters made tiny first.

nbval cannot pass parameters, and the training notebook's defaults train for minutes; so
each notebook is first prepared by papermill (parameters injected, nothing executed) and
nbval then runs the prepared copies cell by cell in a fresh kernel.
"""

import subprocess
import sys

import papermill as pm

from tests.conftest import make_dataset
from wastesort.config import REPO_ROOT

TINY = {"train": {"epochs": 1, "freeze_epochs": 1, "size": 64, "bs": 8, "run_lr_find": True},
        "evaluate": {"split": "all"},
        "retrain": {"epochs": 1, "size": 64, "bs": 8, "pull": False}}


def test_notebooks_run_clean_under_nbval(tmp_path, champion_exports):
    data = make_dataset(tmp_path / "data", per_class=6)
    reviewed = make_dataset(tmp_path / "reviewed", per_class=2, size=(80, 60))  # new photos
    prepared = tmp_path / "notebooks"
    prepared.mkdir()
    notebooks = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
    assert {p.stem for p in notebooks} >= {"train", "evaluate", "retrain"}
    for notebook in notebooks:
        params = {"data_dir": str(data), "exports_dir": str(champion_exports),
                  "reviewed_dir": str(reviewed), **TINY.get(notebook.stem, {})}
        pm.execute_notebook(str(notebook), str(prepared / notebook.name), parameters=params,
                            prepare_only=True, kernel_name="python3")
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q",
                             "-p", "no:cacheprovider", "--rootdir", str(prepared), str(prepared)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
