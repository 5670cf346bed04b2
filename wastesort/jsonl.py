"""Append-only JSON Lines files: the registry log, the feedback store, sync and pull records, logs.

A line is appended in one ``write`` to a file opened with ``O_APPEND``, then fsynced, so
writers in several processes never interleave and an acknowledged line survives a crash.
The same helper serves the statistics logs (traffic, shadow), without the fsync.
A process killed mid-write can leave a torn last line; readers skip it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def append_jsonl(path: Path, *entries: dict, fsync: bool = True) -> None:
    """Append ``entries`` in one write. ``fsync=False`` suits logs where losing the last
    lines in a crash changes nothing (traffic statistics, shadow comparisons)."""
    lines = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, lines)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[dict]:
    """Every complete line of ``path`` (none if it does not exist)."""
    if not Path(path).exists():
        return []
    entries = []
    for line in Path(path).read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # torn by a crash mid-write, so never acknowledged
    return entries
