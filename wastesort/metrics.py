"""Counters and histograms in the Prometheus text format, without a client library.

The service needs a handful of series; writing them out is a page of code, and it keeps the
package free of another dependency. Thread-safe: batches finish on worker threads.
"""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)

Labels = tuple[tuple[str, str], ...]


class Metrics:
    def __init__(self, prefix: str = "wastesort"):
        self.prefix = prefix
        self._lock = threading.Lock()
        self._help: dict[str, tuple[str, str]] = {}
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._histograms: dict[str, tuple[tuple[float, ...], dict[Labels, list[float]]]] = {}

    def counter(self, name: str, help_text: str) -> None:
        self._help[name] = ("counter", help_text)

    def histogram(self, name: str, help_text: str, buckets: tuple[float, ...]) -> None:
        self._help[name] = ("histogram", help_text)
        self._histograms[name] = (buckets, {})

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._counters[name][_key(labels)] += value

    def observe(self, name: str, value: float, **labels: str) -> None:
        buckets, series = self._histograms[name]
        with self._lock:
            counts = series.setdefault(_key(labels), [0.0] * (len(buckets) + 2))
            for i, bound in enumerate(buckets):
                if value <= bound:
                    counts[i] += 1
            counts[-2] += value  # sum
            counts[-1] += 1  # count

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value (for tests and the admin view)."""
        with self._lock:
            return self._counters[name].get(_key(labels), 0.0)

    def render(self) -> str:
        lines = []
        with self._lock:
            for name, (kind, help_text) in sorted(self._help.items()):
                full = f"{self.prefix}_{name}"
                lines += [f"# HELP {full} {help_text}", f"# TYPE {full} {kind}"]
                if kind == "counter":
                    for labels, v in sorted(self._counters[name].items()):
                        lines.append(f"{full}{_fmt(labels)} {v:g}")
                    continue
                buckets, series = self._histograms[name]
                for labels, counts in sorted(series.items()):
                    for bound, n in zip(buckets, counts):
                        lines.append(f"{full}_bucket{_fmt(labels + (('le', f'{bound:g}'),))} {n:g}")
                    lines.append(f"{full}_bucket{_fmt(labels + (('le', '+Inf'),))} {counts[-1]:g}")
                    lines.append(f"{full}_sum{_fmt(labels)} {counts[-2]:g}")
                    lines.append(f"{full}_count{_fmt(labels)} {counts[-1]:g}")
        return "\n".join(lines) + "\n"


def _key(labels: dict[str, str]) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _fmt(labels: Labels) -> str:
    if not labels:
        return ""
    escaped = (f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
               for k, v in labels)
    return "{" + ",".join(escaped) + "}"
