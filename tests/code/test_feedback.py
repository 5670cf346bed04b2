"""The feedback store keeps every acknowledged flag, whatever else happens."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import jpeg_bytes, photo
from wastesort.feedback import FeedbackStore
from wastesort.images import sha256_bytes
from wastesort.predict import Prediction

LABELS = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
PREDICTION = Prediction("glass", 0.7, {label: 0.06 for label in LABELS} | {"glass": 0.7}, "v1")


def test_a_flag_stores_the_image_once_and_a_full_record(tmp_path):
    store = FeedbackStore(tmp_path, LABELS)
    image = jpeg_bytes(photo((10, 200, 10), seed=1))
    first = store.add(image, ".jpg", PREDICTION, "plastic", "  a bottle  ", "session-1")
    second = store.add(image, ".JPG", None, "trash", "", "session-2")
    assert first.image_path == second.image_path == f"images/{sha256_bytes(image)}.jpg"
    assert (tmp_path / first.image_path).read_bytes() == image
    assert len(list((tmp_path / "images").iterdir())) == 1
    flags = store.flags()
    assert [f.id for f in flags] == [first.id, second.id]
    assert flags[0].predicted_label == "glass" and flags[0].probabilities["glass"] == 0.7
    assert flags[0].model_version == "v1" and flags[0].comment == "a bottle"
    assert flags[1].predicted_label is None and flags[1].corrected_label == "trash"


def test_a_label_outside_the_set_is_refused_and_nothing_is_written(tmp_path):
    store = FeedbackStore(tmp_path, LABELS)
    with pytest.raises(ValueError, match="not one of the classes"):
        store.add(jpeg_bytes(photo((1, 2, 3), seed=2)), ".jpg", PREDICTION, "banana")
    with pytest.raises(ValueError, match="not an image"):
        store.add(b"not a photo", ".jpg", PREDICTION, "glass")
    assert store.flags() == [] and not (tmp_path / "images").exists()


def test_fifty_concurrent_flags_from_threads_are_all_kept(tmp_path):
    store = FeedbackStore(tmp_path, LABELS)
    images = [jpeg_bytes(photo((i * 5, 100, 50), seed=i)) for i in range(25)]
    threads = [threading.Thread(target=store.add,
                                args=(images[i % 25], ".jpg", PREDICTION, LABELS[i % 6], f"t{i}"))
               for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flags = store.flags()
    assert len(flags) == 50 and len({f.id for f in flags}) == 50
    assert sorted(f.comment for f in flags) == sorted(f"t{i}" for i in range(50))
    assert len(list((tmp_path / "images").iterdir())) == 25
    for line in (tmp_path / "flags.jsonl").read_text().splitlines():
        json.loads(line)


WRITER = """
import sys, threading
from tests.conftest import jpeg_bytes, photo
from wastesort.feedback import FeedbackStore
store = FeedbackStore(sys.argv[1], {labels!r})
tag = sys.argv[2]
def one(i):
    store.add(jpeg_bytes(photo((i, 50, 50), seed=i)), ".jpg", None, "paper", f"{{tag}}-{{i}}")
threads = [threading.Thread(target=one, args=(i,)) for i in range(int(sys.argv[3]))]
[t.start() for t in threads]; [t.join() for t in threads]
if len(sys.argv) > 4:   # keep flagging, reporting each acknowledged flag, until killed
    i = 1000
    while True:
        flag = store.add(jpeg_bytes(photo((i % 255, 9, 9), seed=i)), ".jpg", None, "glass", f"{{tag}}-{{i}}")
        print(flag.id, flush=True)
        i += 1
""".format(labels=LABELS)


def _writer(root: Path, tag: str, n: int, forever: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), tag, str(n)]
                            + (["forever"] if forever else []),
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])


def test_fifty_flags_from_two_processes_at_once_are_all_kept(tmp_path):
    procs = [_writer(tmp_path, tag, 25) for tag in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    comments = sorted(f.comment for f in FeedbackStore(tmp_path, LABELS).flags())
    assert comments == sorted([f"a-{i}" for i in range(25)] + [f"b-{i}" for i in range(25)])


def test_a_writer_killed_mid_flag_loses_no_acknowledged_flag(tmp_path):
    proc = _writer(tmp_path, "k", 0, forever=True)
    acknowledged = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < 20 and time.monotonic() < deadline:
        acknowledged.append(proc.stdout.readline().strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stored = {f.id for f in FeedbackStore(tmp_path, LABELS).flags()}
    assert len(acknowledged) == 20 and set(acknowledged) <= stored
    for flag in FeedbackStore(tmp_path, LABELS).flags():
        assert (tmp_path / flag.image_path).is_file()
    for path in (tmp_path / "images").glob("[!.]*"):  # visible images are whole: name = hash
        assert sha256_bytes(path.read_bytes()) == path.stem
