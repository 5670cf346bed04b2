"""Folder-per-class datasets: what is in them, what is wrong with them, and an honest split.

A dataset is a folder with one sub-folder per class. :func:`scan` reads every file once and
reports what would quietly hurt a model: files that do not decode, tiny or odd images,
exact duplicates, and duplicates that carry different labels. Training calls
:func:`training_items`, which applies the same findings and refuses data it cannot trust.

Trashnet photographs each object several times under consecutive file numbers, so a random
split puts near-copies on both sides and flatters accuracy. :func:`grouped_split` keeps
blocks of consecutive numbers, and identical files, on one side.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .images import IMAGE_SUFFIXES, MIN_SIDE, ImageError, inspect_image, sha256_file

MAX_BAD_FRACTION = 0.05  # more unreadable files than this means the folder is not what you think
MIN_PER_CLASS = 2


class DataError(ValueError):
    """The dataset cannot be trained on as it is; the message says what to fix."""


@dataclass(frozen=True)
class Item:
    path: Path
    label: str
    sha256: str


@dataclass
class DataReport:
    """Everything :func:`scan` found. ``items`` holds only files usable for training."""

    root: Path
    labels: list[str]
    items: list[Item] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    tiny: list[Path] = field(default_factory=list)
    animated: list[Path] = field(default_factory=list)
    odd_modes: dict[str, list[Path]] = field(default_factory=dict)
    exif_rotated: list[Path] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)

    @property
    def class_counts(self) -> dict[str, int]:
        counts = Counter(item.label for item in self.items)
        return {label: counts.get(label, 0) for label in self.labels}

    @property
    def empty_classes(self) -> list[str]:
        return [label for label, n in self.class_counts.items() if n == 0]

    def duplicate_groups(self) -> list[list[Item]]:
        """Groups of files with identical bytes (two or more files each)."""
        by_hash: dict[str, list[Item]] = defaultdict(list)
        for item in self.items:
            by_hash[item.sha256].append(item)
        return [group for _, group in sorted(by_hash.items()) if len(group) > 1]

    def conflicts(self) -> list[list[Item]]:
        """Identical files filed under different classes: at least one label is wrong."""
        return [g for g in self.duplicate_groups() if len({i.label for i in g}) > 1]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.items)

    def to_dict(self) -> dict:
        rel = lambda p: str(Path(p).relative_to(self.root))  # noqa: E731
        return {
            "root": str(self.root),
            "fingerprint": self.fingerprint,
            "n_images": len(self.items),
            "class_counts": self.class_counts,
            "empty_classes": self.empty_classes,
            "unreadable": [{"path": rel(p), "reason": r} for p, r in self.unreadable],
            "tiny": [rel(p) for p in self.tiny],
            "animated": [rel(p) for p in self.animated],
            "odd_modes": {m: [rel(p) for p in ps] for m, ps in sorted(self.odd_modes.items())},
            "exif_rotated": [rel(p) for p in self.exif_rotated],
            "ignored": [rel(p) for p in self.ignored],
            "duplicates": [[rel(i.path) for i in g] for g in self.duplicate_groups()],
            "conflicts": [[rel(i.path) for i in g] for g in self.conflicts()],
        }

    def summary(self) -> str:
        """A short human report, the one `wastesort data check` prints."""
        d = self.to_dict()
        total = max(d["n_images"], 1)
        lines = [f"Dataset {self.root}", f"  fingerprint   {d['fingerprint'][:16]}",
                 f"  usable images {d['n_images']} in {len(self.labels)} classes"]
        for label, n in d["class_counts"].items():
            lines.append(f"    {label:<12}{n:>6}  {n / total:6.1%}  {'#' * round(40 * n / total)}")
        n_dup_files = sum(len(g) - 1 for g in d["duplicates"])
        for name, found in [("unreadable", d["unreadable"]), ("tiny (<%dpx)" % MIN_SIDE, d["tiny"]),
                            ("animated", d["animated"]), ("EXIF-rotated", d["exif_rotated"]),
                            ("not images", d["ignored"]), ("empty classes", d["empty_classes"]),
                            ("duplicate groups", d["duplicates"]),
                            ("label conflicts", d["conflicts"])]:
            lines.append(f"  {name:<17}{len(found):>5}")
            for example in found[:5]:
                lines.append(f"      {example}")
        lines.append(f"  redundant copies {n_dup_files:>4}")
        for mode, paths in d["odd_modes"].items():
            lines.append(f"  mode {mode:<12}{len(paths):>5} (converted to RGB)")
        return "\n".join(lines)


def fingerprint(items: list[Item]) -> str:
    """Identifies a dataset by content and labels, whatever its paths or file order."""
    lines = sorted(f"{i.sha256} {i.label}" for i in items)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def list_images(root: Path) -> tuple[list[str], list[tuple[Path, str]], list[Path]]:
    """Class names, (file, label) pairs of image files, and other files we skip."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder. Point at a folder with one sub-folder per class.")
    labels = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not labels:
        raise DataError(f"{root} has no class sub-folders (expected e.g. {root}/glass/*.jpg).")
    files, ignored = [], []
    for label in labels:
        for path in sorted((root / label).rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES:
                files.append((path, label))
            else:
                ignored.append(path)
    return labels, files, ignored


def scan(root: Path, workers: int = 4) -> DataReport:
    """Decode and hash every image once; nothing is written."""
    labels, files, ignored = list_images(root)
    report = DataReport(root=Path(root), labels=labels, ignored=ignored)
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda f: _check_one(*f), files))
    for (path, label), (item, info, problem) in zip(files, results):
        if problem:
            report.unreadable.append((path, problem))
            continue
        if info.animated:
            report.animated.append(path)
        elif min(info.width, info.height) < MIN_SIDE:
            report.tiny.append(path)
        else:
            report.items.append(item)
        if info.mode not in ("RGB", "L"):
            report.odd_modes.setdefault(info.mode, []).append(path)
        if info.exif_rotated:
            report.exif_rotated.append(path)
    return report


def _check_one(path: Path, label: str) -> tuple[Item | None, object, str]:
    try:
        info = inspect_image(path)
        return Item(path=path, label=label, sha256=sha256_file(path)), info, ""
    except (ImageError, OSError) as err:
        return None, None, str(err)


def training_items(report: DataReport, drop_conflicts: bool = True) -> list[Item]:
    """The items a model may learn from, one per distinct image, or :class:`DataError`.

    Identical copies with the same label are kept once (they would be counted twice and
    could straddle the split). Copies with different labels teach the model nonsense: they
    are dropped when ``drop_conflicts`` is set and refused otherwise.
    """
    bad = len(report.unreadable)
    total = bad + len(report.items) + len(report.tiny) + len(report.animated)
    if total and bad / total > MAX_BAD_FRACTION:
        raise DataError(f"{bad} of {total} files in {report.root} do not decode "
                        f"(more than {MAX_BAD_FRACTION:.0%}); fix or remove them first, "
                        "e.g. " + ", ".join(str(p) for p, _ in report.unreadable[:3]))
    if report.empty_classes:
        raise DataError(f"Class folders without usable images: {', '.join(report.empty_classes)}. "
                        "Add images or remove the folders; the model cannot learn an empty class.")
    conflicts = report.conflicts()
    if conflicts and not drop_conflicts:
        examples = "; ".join(" = ".join(f"{i.label}/{i.path.name}" for i in g) for g in conflicts[:3])
        raise DataError(f"{len(conflicts)} images are filed under two classes ({examples}). "
                        "Fix their labels, or pass drop_conflicts=True to leave them out.")
    conflicted = {i.sha256 for g in conflicts for i in g}
    seen: set[str] = set()
    items = []
    for item in report.items:
        if item.sha256 in conflicted or item.sha256 in seen:
            continue
        seen.add(item.sha256)
        items.append(item)
    small = {label: n for label, n in Counter(i.label for i in items).items() if n < MIN_PER_CLASS}
    if small or len(report.labels) < 2:
        raise DataError(f"Too few images to train: need two classes with at least "
                        f"{MIN_PER_CLASS} images each (short: {small or report.labels}).")
    return items


_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def group_key(item: Item, block: int) -> tuple[str, str, int]:
    """Files numbered close together in one class usually show the same object."""
    match = _NUMBERED.match(item.path.stem)
    if not match:
        return item.label, item.path.stem, -1
    return item.label, match.group(1), int(match.group(2)) // block


def grouped_split(items: list[Item], valid_pct: float = 0.2, seed: int = 42,
                  block: int = 10) -> list[bool]:
    """``is_valid`` per item: whole groups go to validation until each class has its share.

    Deterministic for a given seed and item list, whatever order the files were listed in.
    """
    # Union-find over group keys and content hashes: identical files join their groups.
    parent: dict[tuple, tuple] = {}

    def root(key: tuple) -> tuple:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    for item in items:
        parent[root(("sha256", item.sha256))] = root(group_key(item, block))
    groups: dict[tuple, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        groups[root(group_key(item, block))].append(index)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    target = {label: valid_pct * n for label, n in Counter(i.label for i in items).items()}
    taken: Counter = Counter()
    is_valid = [False] * len(items)
    for key in keys:
        label = items[groups[key][0]].label
        if taken[label] + len(groups[key]) / 2 <= target[label]:
            for index in groups[key]:
                is_valid[index] = True
            taken[label] += len(groups[key])
    return is_valid


def split_as_trained(report: DataReport, params: dict) -> tuple[list[Item], list[bool]]:
    """The items and ``is_valid`` flags a model was trained with, from its card's ``params``."""
    items = training_items(report, drop_conflicts=params["drop_conflicts"])
    return items, grouped_split(items, params["valid_pct"], params["seed"], params["group_block"])
