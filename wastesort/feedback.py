"""The local feedback store: every "wrong, it is X" a user sends, kept without loss.

Layout of ``feedback/``::

    feedback/
      images/<sha256>.<ext>   the photo, stored once by content hash, bytes as uploaded
      flags.jsonl             one JSON record per flag, append-only

An image file appears by ``rename`` of a fsynced temp file, so it is whole or absent. A
record is one ``write`` of one line to a file opened for appending, under a lock shared by
every process on the machine, then fsynced; only then is the user told it was saved. This
store is what the Label Studio sync reads.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from .images import load_rgb, sha256_bytes
from .jsonl import append_jsonl, read_jsonl
from .predict import Prediction
from .registry import fsync_dir, now_utc

MAX_COMMENT = 2000


@dataclass(frozen=True)
class Flag:
    id: str
    time: str
    image_sha256: str
    image_path: str  # relative to the store
    predicted_label: str | None
    probabilities: dict[str, float] | None
    model_version: str | None
    corrected_label: str
    comment: str
    session_id: str


class FeedbackStore:
    def __init__(self, root: Path, labels: list[str]):
        self.root = Path(root)
        self.labels = list(labels)
        self.images = self.root / "images"
        self.flags_file = self.root / "flags.jsonl"

    def add(self, image: bytes, suffix: str, prediction: Prediction | None, corrected_label: str,
            comment: str = "", session_id: str = "") -> Flag:
        """Store one correction durably; raises ``ValueError`` for a label outside the set."""
        if corrected_label not in self.labels:
            raise ValueError(f"{corrected_label!r} is not one of the classes "
                             f"({', '.join(self.labels)}); pick one of them.")
        load_rgb(image)  # raises ImageError (a ValueError) for anything a reviewer couldn't see
        sha = sha256_bytes(image)
        image_path = self._store_image(image, sha, suffix)
        flag = Flag(id=uuid.uuid4().hex, time=now_utc(), image_sha256=sha,
                    image_path=str(image_path.relative_to(self.root)),
                    predicted_label=prediction.label if prediction else None,
                    probabilities=prediction.probabilities if prediction else None,
                    model_version=prediction.model_version if prediction else None,
                    corrected_label=corrected_label, comment=comment.strip()[:MAX_COMMENT],
                    session_id=session_id)
        self._append(flag)
        return flag

    def flags(self) -> list[Flag]:
        return [Flag(**entry) for entry in read_jsonl(self.flags_file)]

    def _store_image(self, image: bytes, sha: str, suffix: str) -> Path:
        self.images.mkdir(parents=True, exist_ok=True)
        suffix = suffix.lower() if suffix.lower() in {".jpg", ".jpeg", ".png", ".webp", ".bmp",
                                                      ".gif", ".tif", ".tiff"} else ".img"
        path = self.images / f"{sha}{suffix}"
        if path.exists():
            return path
        fd, tmp = tempfile.mkstemp(dir=self.images, prefix=".incoming-")
        with os.fdopen(fd, "wb") as f:
            f.write(image)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)  # same bytes under the same name: racing writers agree
        fsync_dir(self.images)
        return path

    def _append(self, flag: Flag) -> None:
        with FileLock(str(self.root / ".flags.lock"), timeout=30):
            append_jsonl(self.flags_file, asdict(flag))
