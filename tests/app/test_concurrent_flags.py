"""Fifty users flagging at once, through two app processes sharing one feedback store."""

import json
from concurrent.futures import ThreadPoolExecutor

from gradio_client import handle_file

from tests.app.conftest import RunningApp
from tests.conftest import EXAMPLES
from wastesort.feedback import FeedbackStore

PHOTOS = sorted(EXAMPLES.glob("*/*.jpg"))


def test_fifty_concurrent_flags_via_two_app_processes_are_all_stored(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shared = str(tmp_path / "feedback")
    apps = [RunningApp(tmp_path / "a", WASTESORT_FEEDBACK_DIR=shared),
            RunningApp(tmp_path / "b", WASTESORT_FEEDBACK_DIR=shared)]
    try:
        def flag(i: int) -> str:
            client = apps[i % 2].client()
            return client.predict(handle_file(str(PHOTOS[i % len(PHOTOS)])), "trash",
                                  f"user {i}", api_name="/flag")

        with ThreadPoolExecutor(25) as pool:
            answers = list(pool.map(flag, range(50)))
    finally:
        for app in apps:
            app.stop()
    assert all(a.startswith("Saved") for a in answers)
    flags = FeedbackStore(tmp_path / "feedback", []).flags()
    assert sorted(f.comment for f in flags) == sorted(f"user {i}" for i in range(50))
    assert len({f.id for f in flags}) == 50
    lines = (tmp_path / "feedback" / "flags.jsonl").read_text().splitlines()
    assert len(lines) == 50 and all(json.loads(line)["corrected_label"] == "trash" for line in lines)
    assert len(list((tmp_path / "feedback" / "images").glob("[!.]*"))) == len(PHOTOS)
