"""Merging reviewed feedback, the gate and the retrain job's guards (no training here)."""

import os
import shutil
import subprocess
import sys

import pytest
from filelock import FileLock

from tests.conftest import clone_version, make_dataset, photo
from wastesort import retrain
from wastesort.data import grouped_split, scan, training_items
from wastesort.registry import Registry

LABELS = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
PARAMS = {"drop_conflicts": True, "valid_pct": 0.2, "seed": 42, "group_block": 10}


def reviewed_folder(root, base, n_new: int = 12):
    """New reviewed photos of plastic, plus one base image a reviewer relabelled."""
    for i in range(n_new):
        (root / "plastic").mkdir(parents=True, exist_ok=True)
        photo((250, 200, 40), seed=9000 + i).save(root / "plastic" / f"new{i}.jpg")
    (root / "trash").mkdir(exist_ok=True)
    shutil.copy(base / "glass" / "glass3.jpg", root / "trash" / "relabelled.jpg")
    return root


def test_merge_keeps_the_base_split_and_lets_reviewers_win(tmp_path):
    base = make_dataset(tmp_path / "base", per_class=10)
    reviewed, rejected = retrain.reviewed_items(reviewed_folder(tmp_path / "reviewed", base), LABELS)
    assert rejected == [] and len(reviewed) == 13
    merged = retrain.merge(scan(base), PARAMS, reviewed, holdback_share=0.25)

    items = training_items(scan(base))
    valid = {i.sha256 for i, v in zip(items, grouped_split(items, 0.2, 42, 10)) if v}
    assert {i.sha256 for i in merged.base_valid} == valid  # judged on the champion's split
    assert [r["base_label"] + ">" + r["reviewed_label"] for r in merged.relabelled] == ["glass>trash"]
    relabelled = [i for i in merged.train + merged.base_valid if i.sha256 == merged.relabelled[0]["sha256"]]
    assert [i.label for i in relabelled] == ["trash"]  # once, with the reviewer's label
    assert len(merged.feedback_train) + len(merged.feedback_holdback) == 12
    assert merged.feedback_holdback and merged.feedback_train
    assert not {i.sha256 for i in merged.feedback_holdback} & {i.sha256 for i in merged.train}
    assert len(merged.reviewed) == 13


def test_an_image_stays_on_its_side_of_the_holdback_as_feedback_grows(tmp_path):
    base = make_dataset(tmp_path / "base", per_class=6)
    folder = reviewed_folder(tmp_path / "reviewed", base, n_new=40)
    items, _ = retrain.reviewed_items(folder, LABELS)
    first = retrain.merge(scan(base), PARAMS, items[:20], 0.25)
    later = retrain.merge(scan(base), PARAMS, items, 0.25)
    held_first = {i.sha256 for i in first.feedback_holdback}
    assert held_first <= {i.sha256 for i in later.feedback_holdback}
    assert 4 <= len(later.feedback_holdback) <= 18  # about a quarter of 40


def test_training_lists_repeat_the_feedback_and_validate_on_the_base_split(tmp_path):
    base = make_dataset(tmp_path / "base", per_class=6)
    items, _ = retrain.reviewed_items(reviewed_folder(tmp_path / "r", base), LABELS)
    merged = retrain.merge(scan(base), PARAMS, items, 0.25)
    listed, is_valid = retrain.training_lists(merged, feedback_repeat=3)
    assert sum(is_valid) == len(merged.base_valid)
    assert len(listed) - sum(is_valid) == len(merged.train) + 2 * len(merged.feedback_train)


def test_bad_reviewed_images_are_rejected_with_reasons(tmp_path):
    folder = tmp_path / "reviewed"
    for label in ("plastic", "glass", "banana"):
        (folder / label).mkdir(parents=True)
    photo((1, 2, 3), seed=1).save(folder / "plastic" / "a.jpg")
    shutil.copy(folder / "plastic" / "a.jpg", folder / "glass" / "a.jpg")  # two verdicts
    photo((9, 9, 9), seed=2).save(folder / "banana" / "b.jpg")
    (folder / "glass" / "broken.jpg").write_bytes(b"not a jpeg")
    items, rejected = retrain.reviewed_items(folder, LABELS)
    assert items == []
    text = "\n".join(rejected)
    assert "'banana' is not one of" in text and "different labels" in text and "broken.jpg" in text
    assert retrain.reviewed_items(tmp_path / "missing", LABELS) == ([], [])


def metrics(base: float, holdback: float | None) -> dict:
    return {"base": {"accuracy": base},
            "holdback": None if holdback is None else {"accuracy": holdback}}


@pytest.mark.parametrize("candidate, passed, reason", [
    (metrics(0.875, 0.9), True, "better on the feedback"),
    (metrics(0.86, 0.9), False, "base accuracy fell by 0.020"),
    (metrics(0.9, 0.3), False, "is not above the champion's 0.300"),
    (metrics(0.9, None), False, "no reviewed images were held back"),
    ({"base": None, "holdback": {"accuracy": 0.9}}, False, "no validation split"),
])
def test_the_gate(candidate, passed, reason):
    champion = metrics(0.88, 0.3 if candidate["holdback"] else None)
    champion["base"] = candidate["base"] and champion["base"]
    result = retrain.gate(champion, candidate, tolerance=0.01)
    assert result.passed is passed and reason in " ".join(result.reasons)


def test_what_a_passing_candidate_becomes(champion_exports):
    registry = Registry(champion_exports)
    champion = registry.resolve("champion")
    passed = retrain.gate(metrics(0.8, 0.1), metrics(0.8, 0.9), 0.01)
    failed = retrain.gate(metrics(0.8, 0.1), metrics(0.7, 0.9), 0.01)
    for name in ("c1", "c2", "c3"):
        clone_version(champion_exports, champion, name)
    assert "stays unaliased" in retrain.apply_gate(registry, "c1", failed, "champion", 10)
    assert registry.aliases() == {"champion": champion}
    retrain.apply_gate(registry, "c1", passed, "challenger", 10)
    assert registry.aliases() == {"champion": champion, "challenger": "c1"}
    retrain.apply_gate(registry, "c2", passed, "canary", 25)
    assert registry.aliases()["challenger"] == "c2"
    assert registry.rollout() == {"mode": "canary", "percent": 25}
    retrain.apply_gate(registry, "c3", passed, "champion", 10)
    assert registry.aliases()["champion"] == "c3"
    with pytest.raises(ValueError, match="on_pass must be one of"):
        retrain.apply_gate(registry, "c3", passed, "everyone", 10)


def test_min_new_counts_only_reviews_no_retrain_used(tmp_path, champion_exports):
    registry = Registry(champion_exports)
    base = make_dataset(tmp_path / "base", per_class=6)
    folder = reviewed_folder(tmp_path / "reviewed", base, n_new=5)
    assert retrain.count_new(registry, folder, LABELS) == 6
    items, _ = retrain.reviewed_items(folder, LABELS)
    merged = retrain.merge(scan(base), PARAMS, items, 0.25)
    version = clone_version(champion_exports, registry.resolve("champion"), "candidate")
    result = retrain.gate(metrics(0.8, 0.1), metrics(0.8, 0.9), 0.01)
    retrain.record(registry, version, merged, result, "test")
    assert registry.card(version)["retrain"]["gate"]["passed"]
    assert retrain.count_new(registry, folder, LABELS) == 0
    photo((1, 250, 1), seed=77).save(folder / "plastic" / "one-more.jpg")
    assert retrain.count_new(registry, folder, LABELS) == 1


def cli(args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wastesort", "retrain", *args],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def test_the_job_waits_for_enough_new_reviews_and_never_overlaps(tmp_path, champion_exports):
    base = make_dataset(tmp_path / "base", per_class=6)
    env = {"WASTESORT_EXPORTS_DIR": str(champion_exports), "WASTESORT_DATA_DIR": str(base),
           "WASTESORT_FEEDBACK_DIR": str(tmp_path / "feedback"), "WASTESORT_LABELSTUDIO_TOKEN": ""}
    reviewed_folder(tmp_path / "feedback" / "reviewed", base, n_new=3)
    idle = cli(["--min-new", "5"], env)
    assert idle.returncode == 0 and "nothing to do: 4 new reviewed images (need 5)" in idle.stdout
    with FileLock(str(champion_exports / ".retrain.lock")):
        busy = cli(["--min-new", "0"], env)
    assert busy.returncode == 75 and "Another retrain is running" in busy.stderr


def test_a_failing_retrain_leaves_the_champion_and_says_why(tmp_path, champion_exports):
    registry = Registry(champion_exports)
    before = (registry.root / "aliases.json").read_text()
    env = {"WASTESORT_EXPORTS_DIR": str(champion_exports),
           "WASTESORT_DATA_DIR": str(tmp_path / "no-such-data"),
           "WASTESORT_FEEDBACK_DIR": str(tmp_path / "feedback")}
    failed = cli(["--min-new", "0", "--no-pull"], env)
    assert failed.returncode == 1
    assert "retraining failed in notebook cell" in failed.stderr and "not a folder" in failed.stderr
    assert "The champion is unchanged" in failed.stderr
    assert (registry.root / "aliases.json").read_text() == before
    assert list((registry.root / ".runs").glob("retrain-*.ipynb"))  # kept for reading
