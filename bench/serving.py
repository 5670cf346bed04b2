"""Embedded model vs model service, measured on this machine.

    python bench/serving.py [--requests 200] [--max-wait-ms 0]

Prints, for concurrency 1, 8 and 32: p50/p95/p99 latency and images per second for
- embedded: the in-process ONNX predictor, called from C threads (what the app does);
- service: `wastesort serve` on 127.0.0.1, C client threads each POSTing one image;
and the ceiling: raw ONNX Runtime batch throughput of the same model, preprocessing
included. Each level sends a bounded number of requests (and stops after 120 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import EXAMPLES  # noqa: E402
from tests.service.conftest import RunningService  # noqa: E402
from wastesort.config import REPO_ROOT  # noqa: E402
from wastesort.images import load_rgb  # noqa: E402
from wastesort.predict import OnnxPredictor  # noqa: E402
from wastesort.preprocess import to_input  # noqa: E402
from wastesort.registry import Registry  # noqa: E402

LEVELS = (1, 8, 32)
TIME_LIMIT_S = 120


def ceiling(predictor: OnnxPredictor, photos: list[bytes], batch: int = 16, n: int = 320) -> float:
    spec = predictor.card["preprocessing"]
    start = time.perf_counter()
    for i in range(0, n, batch):
        x = to_input([load_rgb(photos[(i + j) % len(photos)]) for j in range(batch)], spec)
        predictor.session.run(None, {predictor.input_name: x})
    return n / (time.perf_counter() - start)


def load(call, photos: list[bytes], concurrency: int, requests: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + TIME_LIMIT_S

    def one(i: int) -> None:
        if time.monotonic() > deadline:
            return
        t = time.perf_counter()
        call(photos[i % len(photos)])
        with lock:
            latencies.append((time.perf_counter() - t) * 1000)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    return latencies, len(latencies) / (time.perf_counter() - start)


def row(name: str, c: int, latencies: list[float], rate: float) -> str:
    q = statistics.quantiles(latencies, n=100)
    return f"{name:<10}{c:>5}{statistics.median(latencies):>10.1f}{q[94]:>10.1f}{q[98]:>10.1f}{rate:>10.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--max-wait-ms", default="0")
    args = parser.parse_args()
    photos = [p.read_bytes() for p in sorted(EXAMPLES.glob("*/*.jpg"))]
    predictor = OnnxPredictor(Registry(REPO_ROOT / "exports").path("champion"))
    predictor.predict(photos[:2])  # warm up
    print(f"model {predictor.version}, {os.cpu_count()} CPUs")
    print(f"ceiling: raw ONNX Runtime, batch 16, preprocessing included: "
          f"{ceiling(predictor, photos):.1f} img/s\n")
    print(f"{'mode':<10}{'conc':>5}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'img/s':>10}")
    for c in LEVELS:
        print(row("embedded", c, *load(lambda b: predictor.predict([b]), photos, c, args.requests)),
              flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        service = RunningService(Path(tmp), WASTESORT_MAX_WAIT_MS=args.max_wait_ms)
        local = threading.local()

        def post(data: bytes) -> None:
            if not hasattr(local, "http"):
                local.http = httpx.Client(base_url=service.url, timeout=30)
            r = local.http.post("/v1/predict", files=[("files", ("p.jpg", data, "image/jpeg"))])
            r.raise_for_status()

        try:
            for _ in range(20):
                post(photos[0])  # warm up
            for c in LEVELS:
                print(row("service", c, *load(post, photos, c, args.requests)), flush=True)
        finally:
            service.stop()


if __name__ == "__main__":
    main()
