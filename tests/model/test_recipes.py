"""bench/recipes.py, the recipe search: tiny recipes on generated photos, one line each."""

import json
import os
import subprocess
import sys

from tests.conftest import make_dataset
from wastesort.config import REPO_ROOT

TINY = "epochs=1 freeze_epochs=1 size=48 bs=8 group_block=1"  # 8 photos a class: small groups


def test_the_recipe_search_trains_each_recipe_on_one_split(tmp_path):
    results = tmp_path / "results.jsonl"
    env = {**os.environ, "WASTESORT_DATA_DIR": str(make_dataset(tmp_path / "data"))}
    run = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "recipes.py"), "--seeds", "42", "43",
         "--jsonl", str(results), "-r", f"small: {TINY}", "-r", f"fast: {TINY} lr=0.01"],
        env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["name"], r["seed"]) for r in rows] == [
        ("small", 42), ("small", 43), ("fast", 42), ("fast", 43)]
    assert rows[2]["recipe"]["lr"] == 0.01 and rows[0]["recipe"]["size"] == 48
    for r in rows:
        for measured in (r["plain"], r["flip_tta"]):
            assert 0 <= measured["accuracy"] <= 1
            assert set(measured["recall"]) == {"cardboard", "glass", "metal", "paper",
                                               "plastic", "trash"}
    printed = [line.split()[0] for line in run.stdout.splitlines()[2:]]
    assert printed == ["small", "small", "fast", "fast"]
