"""Retraining from reviewed feedback: merge the data, train a candidate, gate it, run the job.

``notebooks/retrain.ipynb`` calls these steps in order; ``wastesort retrain`` runs that
notebook as a scheduled job (:func:`run`):

1. **merge** the reviewed images with the base dataset. The champion's validation split is
   rebuilt exactly (same seed, same groups), so old and new model are judged on the same
   images. A reviewed image that is also in the base data keeps its place but takes the
   reviewer's label (the notebook lists these conflicts). Part of the new reviewed images is
   **held back**, chosen by content hash so an image stays on its side in every retrain.
2. **gate**: the candidate becomes ``challenger`` only if it loses at most ``tolerance``
   accuracy on the base split and does better than the champion on the held-back feedback.
3. **record** the retrain, so ``--min-new`` counts only reviewed images not used before.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from . import monitor
from .config import Settings
from .data import DataReport, Item, fingerprint, scan, split_as_trained
from .jsonl import append_jsonl, read_jsonl
from .notebooks import run_notebook
from .registry import Registry, new_version_id, now_utc

ON_PASS = ("challenger", "champion", "canary")  # what a candidate that passes the gate becomes
HISTORY = "retrain.jsonl"  # in the registry: one line per finished retrain


# -- 1. merge ----------------------------------------------------------------------------------

@dataclass
class Merged:
    """The data of one retrain. ``train`` and ``base_valid`` carry reviewed labels."""

    train: list[Item]
    base_valid: list[Item]
    feedback_train: list[Item]
    feedback_holdback: list[Item]
    relabelled: list[dict] = field(default_factory=list)  # base images a reviewer relabelled
    rejected: list[str] = field(default_factory=list)

    @property
    def reviewed(self) -> list[str]:
        """Content hashes of every reviewed image this retrain used or held back."""
        return sorted({i.sha256 for i in self.feedback_train + self.feedback_holdback}
                      | {r["sha256"] for r in self.relabelled})

    def summary(self) -> str:
        return (f"base: {len(self.train) - len(self.feedback_train)} training and "
                f"{len(self.base_valid)} validation images; reviewed feedback: "
                f"{len(self.feedback_train)} to train on, {len(self.feedback_holdback)} held back, "
                f"{len(self.relabelled)} base images relabelled, {len(self.rejected)} rejected")


def reviewed_items(folder: Path, labels: list[str]) -> tuple[list[Item], list[str]]:
    """Reviewed images from a folder-per-class dataset (what ``feedback pull`` writes)."""
    if not Path(folder).is_dir() or not any(p.is_dir() for p in Path(folder).iterdir()):
        return [], []
    report = scan(folder)
    rejected = [f"{path}: {reason}" for path, reason in report.unreadable]
    rejected += [f"{path}: smaller than training allows" for path in report.tiny]
    by_sha: dict[str, list[Item]] = {}
    for item in report.items:
        if item.label not in labels:
            rejected.append(f"{item.path}: {item.label!r} is not one of {labels}")
        else:
            by_sha.setdefault(item.sha256, []).append(item)
    items = []
    for group in by_sha.values():
        if len({i.label for i in group}) > 1:
            rejected.append("reviewed twice with different labels: "
                            + ", ".join(str(i.path) for i in group))
        else:
            items.append(group[0])
    return items, rejected


def in_holdback(sha256: str, share: float) -> bool:
    """A fixed, uniform draw per image: the same image is always on the same side."""
    return int(sha256[:8], 16) / 16**8 < share


def merge(base: DataReport, params: dict, reviewed: list[Item], holdback_share: float) -> Merged:
    """Base data split as the champion was trained (``params`` from its card) plus feedback."""
    items, is_valid = split_as_trained(base, params)
    verdict = {r.sha256: r for r in reviewed}
    relabelled, train, valid = [], [], []
    for item, valid_side in zip(items, is_valid):
        review = verdict.get(item.sha256)
        if review and review.label != item.label:
            relabelled.append({"sha256": item.sha256, "path": str(item.path),
                               "base_label": item.label, "reviewed_label": review.label})
            item = Item(item.path, review.label, item.sha256)
        (valid if valid_side else train).append(item)
    base_hashes = {i.sha256 for i in items}
    new = sorted((r for r in reviewed if r.sha256 not in base_hashes), key=lambda i: i.sha256)
    holdback = [i for i in new if in_holdback(i.sha256, holdback_share)]
    if not holdback and len(new) >= 2 and holdback_share > 0:
        holdback = [new[0]]  # too few to draw from: hold back the one nearest the cut
    fresh = [i for i in new if i not in holdback]
    return Merged(train=train + fresh, base_valid=valid, feedback_train=fresh,
                  feedback_holdback=holdback, relabelled=relabelled)


def training_lists(merged: Merged, feedback_repeat: int = 1) -> tuple[list[Item], list[bool]]:
    """Items and ``is_valid`` flags for :func:`wastesort.train.dataloaders`.

    Repeating the feedback makes a few hundred corrections count beside thousands of base
    images; validation during training is the base split.
    """
    train = merged.train + merged.feedback_train * (feedback_repeat - 1)
    return train + merged.base_valid, [False] * len(train) + [True] * len(merged.base_valid)


def data_card(merged: Merged) -> dict:
    """What the candidate's card says about its data, beside the base report."""
    return {"fingerprint": fingerprint(merged.train + merged.base_valid),
            "feedback": {"train": len(merged.feedback_train),
                         "holdback": [i.sha256 for i in merged.feedback_holdback],
                         "relabelled": merged.relabelled, "rejected": merged.rejected}}


# -- 2. gate -----------------------------------------------------------------------------------

@dataclass
class Gate:
    passed: bool
    reasons: list[str]
    champion: dict  # {"base": accuracy, "holdback": accuracy}
    candidate: dict
    tolerance: float

    def to_dict(self) -> dict:
        return asdict(self)


def gate(champion: dict, candidate: dict, tolerance: float) -> Gate:
    """``champion``/``candidate``: metrics dicts keyed ``base`` and ``holdback``."""
    acc = {name: {split: m[split]["accuracy"] if m.get(split) else None for split in ("base", "holdback")}
           for name, m in (("champion", champion), ("candidate", candidate))}
    reasons = []
    if acc["candidate"]["base"] is None:
        reasons.append("the base data has no validation split to compare on")
    elif (drop := acc["champion"]["base"] - acc["candidate"]["base"]) > tolerance:
        reasons.append(f"base accuracy fell by {drop:.3f} (allowed {tolerance:.3f})")
    if acc["candidate"]["holdback"] is None:
        reasons.append("no reviewed images were held back, so no proof the candidate learned them")
    elif acc["candidate"]["holdback"] <= acc["champion"]["holdback"]:
        reasons.append(f"held-back feedback accuracy {acc['candidate']['holdback']:.3f} is not "
                       f"above the champion's {acc['champion']['holdback']:.3f}")
    return Gate(not reasons, reasons or ["better on the feedback, no worse on the base data"],
                acc["champion"], acc["candidate"], tolerance)


def apply_gate(registry: Registry, version: str, result: Gate, on_pass: str,
               canary_percent: float) -> str:
    """Alias the candidate as the gate allows; returns what happened, in words."""
    if on_pass not in ON_PASS:
        raise ValueError(f"on_pass must be one of {', '.join(ON_PASS)}, not {on_pass!r}")
    if not result.passed:
        return f"{version} stays unaliased: " + "; ".join(result.reasons)
    reason = "retrain gate: " + "; ".join(result.reasons)
    if on_pass == "champion":
        registry.promote(version, "champion", reason)
        return f"{version} is now champion"
    registry.promote(version, "challenger", reason)
    if on_pass == "canary":
        registry.set_rollout("canary", canary_percent, reason)
        return f"{version} is challenger, serving {canary_percent:g}% of requests (canary)"
    return f"{version} is challenger"


# -- 3. record and job ---------------------------------------------------------------------------

def record(registry: Registry, version: str, merged: Merged, result: Gate, outcome: str) -> None:
    """Remember which reviewed images this retrain used (for ``--min-new``) and how it ended."""
    card = registry.card(version)
    card["retrain"] = {"gate": result.to_dict(), "outcome": outcome}
    registry.write_card(version, card)
    append_jsonl(registry.root / HISTORY, {"time": now_utc(), "version": version,
                                           "passed": result.passed, "outcome": outcome,
                                           "reviewed": merged.reviewed})


def used_reviewed(registry: Registry) -> set[str]:
    return {sha for entry in read_jsonl(registry.root / HISTORY) for sha in entry["reviewed"]}


def count_new(registry: Registry, reviewed_dir: Path, labels: list[str]) -> int:
    items, _ = reviewed_items(reviewed_dir, labels)
    return len({i.sha256 for i in items} - used_reviewed(registry))


class RetrainBusy(RuntimeError):
    """Another retrain holds the lock."""


@dataclass
class JobResult:
    ran: bool
    message: str
    version: str | None = None


def run(settings: Settings, params: dict, min_new: int, pull: bool = True,
        on_drift: bool = False) -> JobResult:
    """One scheduled retrain: pull, decide, run the notebook. Never touches the champion on failure.

    Raises :class:`RetrainBusy` if a retrain is running, ``ReviewError`` if Label Studio
    cannot be reached, and papermill's ``PapermillExecutionError`` if the notebook fails.
    """
    registry = Registry(settings.exports_dir)
    registry.root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(registry.root / ".retrain.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RetrainBusy(f"Another retrain is running ({registry.root / '.retrain.lock'} is "
                          "held); this one does nothing.") from None
    try:
        champion = registry.card("champion")
        reviewed_dir = Path(params.get("reviewed_dir") or settings.reviewed_dir)
        if pull:
            _pull(settings, champion["labels"], reviewed_dir)
        new = count_new(registry, reviewed_dir, champion["labels"])
        why = f"{new} new reviewed images (need {min_new})"
        if new < min_new:
            drift = monitor.check(settings.log_dir, champion) if on_drift else None
            if not (drift and drift.drifted):
                return JobResult(False, f"nothing to do: {why}")
            why += "; traffic drifted: " + "; ".join(drift.reasons)
        version = params.get("version_id") or new_version_id(champion["arch"])
        executed = registry.root / ".runs" / f"retrain-{version}.ipynb"
        print(f"retraining ({why}): notebooks/retrain.ipynb -> {executed}", flush=True)
        start = time.perf_counter()
        run_notebook("retrain", executed, {
            "data_dir": str(settings.data_dir), "exports_dir": str(registry.root),
            "weights_dir": str(settings.weights_dir), "pull": False,
            **params, "reviewed_dir": str(reviewed_dir), "version_id": version})
        registry.attach_notebook(version, executed, time.perf_counter() - start, "retrain.ipynb")
        executed.unlink()
        return JobResult(True, registry.card(version)["retrain"]["outcome"], version)
    finally:
        lock.release()


def _pull(settings: Settings, labels: list[str], dest: Path) -> None:
    from . import review

    ls = review.client(settings)
    result = review.pull(ls, review.project_id(ls, settings), labels, dest)
    print(f"pulled from Label Studio: {result.written} new, {result.relabelled} relabelled, "
          f"{len(result.rejected)} rejected", flush=True)
