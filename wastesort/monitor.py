"""Is the world still the one the model was trained for? Traffic statistics and drift.

The app (embedded model) and the service write one short line per prediction into
``logs/traffic/<day>.jsonl``: the predicted class, its confidence and the model version,
never the image. :func:`check` compares the recent days with the champion's *reference*,
the same statistics measured on its validation split when it was registered (``card.json``,
``reference``), using two signals:

- the population stability index (PSI) of the predicted class mix: new kinds of items,
  or a class the model has started to confuse, move it (above 0.2 is commonly read as a
  significant shift);
- the share of low-confidence predictions: photos unlike the training data make the model
  unsure, whatever class it picks.

``wastesort monitor`` prints the verdict, and ``wastesort retrain --on-drift`` uses it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from .jsonl import append_jsonl

LOW_CONFIDENCE = 0.5  # below this top-class probability a prediction counts as unsure
PSI_LIMIT = 0.2
LOW_CONFIDENCE_MARGIN = 0.15  # allowed rise of the unsure share over the reference
MIN_PREDICTIONS = 50  # fewer recent predictions than this say nothing either way


class TrafficLog:
    """Appends one line per served prediction to the day's file.

    A statistics log, not a store: lines are appended without fsync (a crash may lose the
    last few, which changes no verdict), in one ``O_APPEND`` write each, so the app and the
    service can share a folder. On the first write of each day, files older than
    ``keep_days`` are deleted, so the folder never grows without bound.
    """

    def __init__(self, log_dir: Path, source: str, keep_days: int = 90):
        self.folder = Path(log_dir) / "traffic"
        self.source = source
        self.keep_days = keep_days
        self._day: date | None = None

    def record(self, predictions) -> None:
        now = datetime.now(timezone.utc)
        time = now.isoformat(timespec="seconds")
        try:
            if now.date() != self._day:
                self.folder.mkdir(parents=True, exist_ok=True)
                self.prune(now.date())
                self._day = now.date()
            append_jsonl(self.folder / f"{now.date().isoformat()}.jsonl",
                         *({"time": time, "label": p.label, "confidence": round(p.confidence, 4),
                            "model_version": p.model_version, "source": self.source}
                           for p in predictions), fsync=False)
        except OSError:
            pass  # a full or read-only disk must never fail a prediction


    def prune(self, today: date) -> None:
        oldest = (today - timedelta(days=self.keep_days)).isoformat()
        for path in self.folder.glob("*.jsonl"):
            if path.stem < oldest:  # ISO dates sort as text
                path.unlink(missing_ok=True)


@dataclass
class Stats:
    """Predicted class mix and confidence of a set of predictions."""

    n: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)
    low_confidence: int = 0

    def __add__(self, other: "Stats") -> "Stats":
        counts = Counter(self.class_counts) + Counter(other.class_counts)
        return Stats(self.n + other.n, dict(counts), self.low_confidence + other.low_confidence)

    def add(self, label: str, confidence: float) -> None:
        self.n += 1
        self.class_counts[label] = self.class_counts.get(label, 0) + 1
        self.low_confidence += confidence < LOW_CONFIDENCE

    @property
    def low_confidence_share(self) -> float:
        return self.low_confidence / self.n if self.n else 0.0

    def shares(self, labels: list[str]) -> dict[str, float]:
        return {label: self.class_counts.get(label, 0) / max(self.n, 1) for label in labels}


def reference(labels: list[str], confidences: list[tuple[str, float]]) -> dict:
    """The card's reference: statistics of (predicted label, confidence) on validation data."""
    stats = Stats()
    for label, confidence in confidences:
        stats.add(label, confidence)
    return {"n": stats.n, "predicted_share": stats.shares(labels),
            "low_confidence_share": stats.low_confidence_share,
            "low_confidence_below": LOW_CONFIDENCE}


def daily(log_dir: Path, days: int, today: date | None = None) -> dict[str, Stats]:
    """Statistics per day for the last ``days`` days (days without traffic left out)."""
    today = today or datetime.now(timezone.utc).date()
    out = {}
    for back in range(days - 1, -1, -1):
        day = (today - timedelta(days=back)).isoformat()
        path = Path(log_dir) / "traffic" / f"{day}.jsonl"
        if not path.exists():
            continue
        stats = Stats()
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
                stats.add(entry["label"], float(entry["confidence"]))
            except (ValueError, KeyError, TypeError):
                continue  # a torn line
        out[day] = stats
    return out


def psi(expected: dict[str, float], actual: dict[str, float], floor: float = 1e-3) -> float:
    """Population stability index between two distributions over the same keys."""
    total = 0.0
    for key in expected:
        e, a = max(expected[key], floor), max(actual.get(key, 0.0), floor)
        total += (a - e) * math.log(a / e)
    return total


@dataclass
class DriftReport:
    drifted: bool
    reasons: list[str]
    n: int
    psi: float | None
    low_confidence_share: float | None
    reference_low_confidence_share: float
    days: dict[str, dict]
    model_version: str

    def to_dict(self) -> dict:
        return asdict(self)


def check(log_dir: Path, card: dict, days: int = 7, today: date | None = None) -> DriftReport:
    """Compare the last ``days`` days of traffic with ``card``'s validation reference."""
    ref = card.get("reference")
    if not ref:
        raise LookupError(f"Model {card['version']} has no traffic reference in its card; "
                          "models registered by this version of wastesort have one.")
    labels = card["labels"]
    per_day = daily(log_dir, days, today)
    recent = sum(per_day.values(), Stats())
    day_rows = {day: {"n": s.n, "low_confidence_share": round(s.low_confidence_share, 4),
                      "predicted_share": {k: round(v, 4) for k, v in s.shares(labels).items()}}
                for day, s in per_day.items()}
    base = dict(n=recent.n, reference_low_confidence_share=ref["low_confidence_share"],
                days=day_rows, model_version=card["version"])
    if recent.n < MIN_PREDICTIONS:
        return DriftReport(False, [f"only {recent.n} predictions in the last {days} days "
                                   f"(need {MIN_PREDICTIONS} to judge)"],
                           psi=None, low_confidence_share=None, **base)
    index = psi(ref["predicted_share"], recent.shares(labels))
    unsure = recent.low_confidence_share
    reasons = []
    if index > PSI_LIMIT:
        reasons.append(f"class mix PSI {index:.3f} > {PSI_LIMIT}")
    if unsure > ref["low_confidence_share"] + LOW_CONFIDENCE_MARGIN:
        reasons.append(f"low-confidence share {unsure:.1%} vs {ref['low_confidence_share']:.1%} "
                       f"on validation data (allowed +{LOW_CONFIDENCE_MARGIN:.0%})")
    return DriftReport(bool(reasons), reasons, psi=index, low_confidence_share=unsure, **base)
