"""Append-only JSON Lines files: the registry log, the feedback store, sync and pull records.

A line is appended in one ``write`` to a file opened with ``O_APPEND``, then fsynced, so
writers in several processes never interleave and an acknowledged line survives a crash.
A process killed mid-write can leave a torn last line; readers skip it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def append_jsonl(path: Path, entry: dict) -> None:
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
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
