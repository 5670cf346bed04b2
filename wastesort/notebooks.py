"""Running the project's notebooks as jobs, with papermill.

The notebooks are the training and evaluation pipelines: run from JupyterLab they are a
report to read; run from here (``wastesort train``) they are a parameterised job whose
executed copy is kept with the model it produced.
"""

from __future__ import annotations

import time
from pathlib import Path

from .config import REPO_ROOT, Settings
from .registry import Registry, new_version_id
from .weights import DEFAULT_ARCH

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def run_notebook(name: str, output: Path, parameters: dict) -> Path:
    """Execute ``notebooks/<name>.ipynb`` with ``parameters`` into ``output``.

    Raises papermill's ``PapermillExecutionError`` when a cell fails; the output notebook is
    written anyway, so the failing cell and its traceback can be read there.
    """
    import papermill as pm

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(NOTEBOOKS_DIR / f"{name}.ipynb"), str(output),
                        parameters=parameters, kernel_name="python3", cwd=str(NOTEBOOKS_DIR),
                        progress_bar=False)
    return output


def train(settings: Settings, parameters: dict) -> str:
    """Train and register a new version through ``notebooks/train.ipynb``; returns its id."""
    registry = Registry(settings.exports_dir)
    arch = parameters.get("arch", DEFAULT_ARCH)
    version = parameters.get("version_id") or new_version_id(arch)
    params = {"data_dir": str(settings.data_dir), "exports_dir": str(settings.exports_dir),
              "weights_dir": str(settings.weights_dir), **parameters, "version_id": version}
    executed = settings.exports_dir / ".runs" / f"train-{version}.ipynb"
    print(f"training {version}: running notebooks/train.ipynb into {executed}", flush=True)
    start = time.perf_counter()
    run_notebook("train", executed, params)  # on failure the executed copy stays for reading
    registry.attach_notebook(version, executed, time.perf_counter() - start)
    executed.unlink()
    return version
