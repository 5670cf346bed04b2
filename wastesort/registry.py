"""The model registry: a folder of versions plus aliases that say which one serves.

Layout of ``exports/``::

    exports/
      20261125T104300-mobilenetv2_100-3fa2c1/   one folder per version
        model.pkl  model.onnx  card.json  train.ipynb
      aliases.json        {"champion": [older, ..., current], "challenger": [...]}
      registry.log        one JSON line per promote / rollback

A version folder appears in one ``rename`` of a finished staging folder, and
``aliases.json`` is replaced in one ``os.replace`` of a fsynced temp file, so a crash at any
moment leaves either the old or the new state, never a broken one. Each alias keeps its
history as a stack; rollback pops it. A file lock makes concurrent writers take turns.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock

from .jsonl import append_jsonl, read_jsonl

ALIASES = ("champion", "challenger")
ROLLOUT_MODES = ("off", "canary", "shadow", "ab")  # how the challenger gets traffic
CARD = "card.json"
FILES = {"fastai": "model.pkl", "onnx": "model.onnx", "notebook": "train.ipynb"}
_VERSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RegistryError(LookupError):
    """A version or alias that does not exist, or a change that makes no sense."""


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_version_id(arch: str) -> str:
    """Sortable by creation time, unique without coordination."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{arch}-{secrets.token_hex(3)}"


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or new file, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes files private; registry files are for everyone
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Registry:
    def __init__(self, root: Path):
        self.root = Path(root)

    # -- reading ---------------------------------------------------------------------
    def versions(self) -> list[str]:
        """Complete versions, oldest first (ids start with their creation time)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if not p.name.startswith(".") and (p / CARD).is_file())

    def path(self, name: str) -> Path:
        return self.root / self.resolve(name)

    def card(self, name: str) -> dict:
        return json.loads((self.path(name) / CARD).read_text())

    def aliases(self) -> dict[str, str]:
        """Alias -> current version."""
        return {alias: stack[-1] for alias, stack in self._stacks().items() if stack}

    def history(self, alias: str) -> list[str]:
        return list(self._stacks().get(alias, []))

    def resolve(self, name: str) -> str:
        """A version id from an alias or a version id."""
        version = self.aliases().get(name, name)
        if not (self.root / version / CARD).is_file():
            known = ", ".join(list(self.aliases()) + self.versions()) or "none"
            raise RegistryError(f"No model version or alias {name!r} in {self.root} "
                                f"(known: {known}).")
        return version

    def log(self) -> list[dict]:
        return read_jsonl(self.root / "registry.log")  # aliases.json is the truth, this the story

    # -- writing ---------------------------------------------------------------------
    @contextlib.contextmanager
    def new_version(self, version_id: str) -> Iterator[Path]:
        """A staging folder that becomes ``version_id`` only if the block succeeds."""
        if not _VERSION_ID.match(version_id):
            raise RegistryError(f"Invalid version id {version_id!r}.")
        final = self.root / version_id
        if final.exists():
            raise RegistryError(f"Version {version_id} already exists.")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=f".staging-{version_id}-"))
        try:
            yield staging
            if not (staging / CARD).is_file():
                raise RegistryError(f"Version {version_id} was not given a {CARD}.")
            for f in staging.iterdir():
                with open(f, "rb") as handle:
                    os.fsync(handle.fileno())
            staging.chmod(0o755)
            os.rename(staging, final)
            fsync_dir(self.root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def attach_notebook(self, version: str, notebook: Path, seconds: float,
                        name: str = FILES["notebook"]) -> None:
        """Keep the executed notebook that produced ``version`` beside it, as provenance."""
        shutil.copyfile(notebook, self.path(version) / name)
        card = self.card(version)
        card["notebook"] = name
        card["training_seconds"] = round(seconds, 1)
        self.write_card(version, card)

    def write_card(self, version: str, card: dict) -> None:
        """Add to a version's card (its model files never change once registered)."""
        write_atomic(self.path(version) / CARD, json.dumps(card, indent=2))

    def promote(self, name: str, alias: str = "champion", reason: str = "") -> str:
        """Point ``alias`` at a version; the previous target stays in its history."""
        if alias not in ALIASES:
            raise RegistryError(f"Unknown alias {alias!r}; use one of {', '.join(ALIASES)}.")
        with self._lock():
            version = self.resolve(name)
            stacks = self._stacks()
            stack = stacks.setdefault(alias, [])
            previous = stack[-1] if stack else None
            if previous == version:
                return version
            stack.append(version)
            self._write(stacks, "promote", alias, previous, version, reason)
        return version

    def rollback(self, alias: str = "champion", reason: str = "") -> str:
        """Point ``alias`` back at the version it had before the last promote."""
        with self._lock():
            stacks = self._stacks()
            stack = stacks.get(alias, [])
            if len(stack) < 2:
                raise RegistryError(f"{alias} has no earlier version to roll back to.")
            previous = stack.pop()
            self._write(stacks, "rollback", alias, previous, stack[-1], reason)
        return stack[-1]

    def rollout(self) -> dict:
        """How serving splits traffic between champion and challenger (see wastesort.serve)."""
        path = self.root / "rollout.json"
        return json.loads(path.read_text()) if path.exists() else {"mode": "off", "percent": 0}

    def set_rollout(self, mode: str, percent: float = 0, reason: str = "") -> dict:
        if mode not in ROLLOUT_MODES:
            raise RegistryError(f"Unknown rollout mode {mode!r}; use one of {', '.join(ROLLOUT_MODES)}.")
        if not 0 <= percent <= 100:
            raise RegistryError(f"Rollout percent must be between 0 and 100, not {percent}.")
        if mode != "off" and "challenger" not in self.aliases():
            raise RegistryError("There is no challenger to roll out; promote one with --alias challenger.")
        with self._lock():
            old = self.rollout()
            new = {"mode": mode, "percent": percent}
            write_atomic(self.root / "rollout.json", json.dumps(new) + "\n")
            self._log({"action": "rollout", "from": old, "to": new, "reason": reason})
        return new

    # -- internals -------------------------------------------------------------------
    def _lock(self) -> FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / ".registry.lock"), timeout=30)

    def _stacks(self) -> dict[str, list[str]]:
        path = self.root / "aliases.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _write(self, stacks: dict, action: str, alias: str, old: str | None, new: str,
               reason: str) -> None:
        write_atomic(self.root / "aliases.json", json.dumps(stacks, indent=2) + "\n")
        self._log({"action": action, "alias": alias, "from": old, "to": new, "reason": reason})

    def _log(self, entry: dict) -> None:
        append_jsonl(self.root / "registry.log", {"time": now_utc(), **entry, "user": _user()})


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
