"""Traffic statistics and the drift verdict, on traffic the tests write themselves."""

import json
import os
import subprocess
import sys
from datetime import date, datetime, timezone

import pytest

from wastesort import monitor
from wastesort.predict import Prediction
from wastesort.registry import Registry

LABELS = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
CARD = {"version": "v1", "labels": LABELS,
        "reference": {"n": 600, "predicted_share": {l: 1 / 6 for l in LABELS},
                      "low_confidence_share": 0.1, "low_confidence_below": 0.5}}


def traffic(log_dir, labels_and_confidences) -> None:
    log = monitor.TrafficLog(log_dir, "test")
    log.record([Prediction(label, conf, {}, "v1") for label, conf in labels_and_confidences])


def like_validation(n: int = 120):
    """The reference mix: every class alike, one in ten unsure."""
    return [(LABELS[i % 6], 0.4 if i % 10 == 0 else 0.9) for i in range(n)]


def test_each_prediction_becomes_one_line_of_the_days_file(tmp_path):
    traffic(tmp_path, [("glass", 0.91234), ("trash", 0.3)])
    day = datetime.now(timezone.utc).date().isoformat()
    lines = (tmp_path / "traffic" / f"{day}.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [(e["label"], e["confidence"], e["source"]) for e in entries] == [
        ("glass", 0.9123, "test"), ("trash", 0.3, "test")]
    with open(tmp_path / "traffic" / f"{day}.jsonl", "a") as f:
        f.write('{"label": "gla')  # torn by a crash
    stats = monitor.daily(tmp_path, days=1)[day]
    assert stats.n == 2 and stats.low_confidence == 1


def test_days_older_than_the_retention_are_deleted(tmp_path):
    folder = tmp_path / "traffic"
    folder.mkdir()
    today = datetime.now(timezone.utc).date()
    kept, dropped = (date.fromordinal(today.toordinal() - n).isoformat() for n in (3, 40))
    for day in (kept, dropped):
        (folder / f"{day}.jsonl").write_text('{"label": "glass", "confidence": 0.9}\n')
    monitor.TrafficLog(tmp_path, "test", keep_days=30).record([Prediction("metal", 0.8, {}, "v1")])
    assert sorted(p.stem for p in folder.glob("*.jsonl")) == [kept, today.isoformat()]


def test_psi_is_zero_for_the_same_mix_and_grows_with_the_shift():
    even = {l: 1 / 6 for l in LABELS}
    assert monitor.psi(even, even) == pytest.approx(0)
    some = {**even, "glass": 0.3, "trash": 1 / 30}
    most = {l: 0.02 for l in LABELS} | {"glass": 0.9}
    assert 0 < monitor.psi(even, some) < monitor.psi(even, most)


def test_traffic_like_the_validation_data_is_no_drift(tmp_path):
    traffic(tmp_path, like_validation())
    report = monitor.check(tmp_path, CARD)
    assert not report.drifted and report.n == 120 and report.psi < 0.05
    assert report.low_confidence_share == pytest.approx(0.1)


def test_a_changed_class_mix_is_drift(tmp_path):
    traffic(tmp_path, [("glass", 0.9)] * 100 + like_validation(30))
    report = monitor.check(tmp_path, CARD)
    assert report.drifted and "class mix PSI" in report.reasons[0]


def test_more_unsure_predictions_are_drift(tmp_path):
    traffic(tmp_path, [(label, 0.35 if i % 2 else 0.9) for i, (label, _) in
                       enumerate(like_validation())])
    report = monitor.check(tmp_path, CARD)
    assert report.drifted and any("low-confidence share 50.0%" in r for r in report.reasons)


def test_little_traffic_or_old_traffic_says_nothing(tmp_path):
    traffic(tmp_path, [("glass", 0.2)] * 10)
    report = monitor.check(tmp_path, CARD)
    assert not report.drifted and "only 10 predictions" in report.reasons[0]
    later = date.fromordinal(datetime.now(timezone.utc).date().toordinal() + 30)
    assert monitor.check(tmp_path, CARD, today=later).n == 0


def test_a_card_without_reference_is_a_clear_error(tmp_path):
    with pytest.raises(LookupError, match="no traffic reference"):
        monitor.check(tmp_path, {"version": "old", "labels": LABELS})


def test_the_bundled_champion_has_a_reference_and_the_cli_judges_against_it(tmp_path,
                                                                           champion_exports):
    card = Registry(champion_exports).card("champion")
    shares = card["reference"]["predicted_share"]
    assert set(shares) == set(card["labels"]) and sum(shares.values()) == pytest.approx(1)
    traffic(tmp_path, [("trash", 0.3)] * 80)
    env = {**os.environ, "WASTESORT_EXPORTS_DIR": str(champion_exports),
           "WASTESORT_LOG_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "wastesort", "monitor", "--json", "--exit-code"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 3, run.stderr
    report = json.loads(run.stdout)
    assert report["drifted"] and report["n"] == 80 and report["psi"] > 1
    human = subprocess.run([sys.executable, "-m", "wastesort", "monitor"], capture_output=True,
                           text=True, env=env)
    assert human.returncode == 0 and "DRIFT: class mix PSI" in human.stdout
