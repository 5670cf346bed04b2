"""Measure the app as a user meets it: cold start, memory, and predict latency.

    python bench/app.py [--n 50]

Starts `python app.py` on a free port of 127.0.0.1 with a private copy of the champion,
then prints: seconds from process start to the first prediction, the app process's peak
memory (VmHWM), and the latency of /predict through gradio_client (median and p95 of N).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gradio_client import handle_file  # noqa: E402

from tests.app.conftest import RunningApp  # noqa: E402
from tests.conftest import EXAMPLES  # noqa: E402


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    photos = sorted(EXAMPLES.glob("*/*.jpg"))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        app = RunningApp(Path(tmp))
        try:
            client = app.client()
            client.predict(handle_file(str(photos[0])), api_name="/predict")
            cold = time.monotonic() - start
            latencies = []
            for i in range(args.n):
                t = time.perf_counter()
                client.predict(handle_file(str(photos[i % len(photos)])), api_name="/predict")
                latencies.append((time.perf_counter() - t) * 1000)
            rss = peak_rss_mb(app.proc.pid)
        finally:
            app.stop()
    latencies.sort()
    print(f"cold start to first prediction  {cold:.1f} s  (HTTP up after {app.startup_seconds:.1f} s)")
    print(f"app peak memory (VmHWM)         {rss:.0f} MB")
    print(f"/predict via gradio_client      median {statistics.median(latencies):.1f} ms, "
          f"p95 {latencies[int(0.95 * len(latencies)) - 1]:.1f} ms  (n={args.n})")


if __name__ == "__main__":
    main()
