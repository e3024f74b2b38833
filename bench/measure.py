"""Timing helpers shared by the bench scripts: percentiles, bounded closed-loop load, RSS.

Every loop is bounded twice: by a count of calls AND by a time budget, whichever comes first.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def summary(latencies_s: Sequence[float]) -> dict:
    """{"n", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms"} of latencies in seconds."""
    if not len(latencies_s):
        return {"n": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "mean_ms": None,
                "max_ms": None}
    a = np.asarray(latencies_s, dtype=np.float64) * 1000.0
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"n": int(a.size), "p50_ms": round(float(p50), 3), "p90_ms": round(float(p90), 3),
            "p99_ms": round(float(p99), 3), "mean_ms": round(float(a.mean()), 3),
            "max_ms": round(float(a.max()), 3)}


@dataclass
class LoadResult:
    latencies_s: list[float] = field(default_factory=list)
    extras: list = field(default_factory=list)  # whatever each call returned (e.g. server timing)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def calls(self) -> int:
        return len(self.latencies_s)

    @property
    def throughput(self) -> float:
        return self.calls / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict:
        return {**summary(self.latencies_s), "errors": len(self.errors),
                "first_error": self.errors[0] if self.errors else None,
                "wall_s": round(self.wall_s, 3), "throughput_per_s": round(self.throughput, 2)}


def closed_loop(call: Callable[[object], object], items: Sequence, *, concurrency: int,
                max_seconds: float) -> LoadResult:
    """`concurrency` threads each take the next item and call `call(item)` until the items are
    used up or `max_seconds` pass. Returns latencies (seconds) and what each call returned.
    An exception is recorded as an error (its text) and does not stop the run."""
    result = LoadResult()
    lock = threading.Lock()
    position = iter(range(len(items)))
    deadline = time.monotonic() + max_seconds

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                i = next(position, None)
            if i is None:
                return
            start = time.perf_counter()
            try:
                extra = call(items[i])
            except Exception as exc:  # noqa: BLE001 - a bench records failures and goes on
                with lock:
                    result.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            elapsed = time.perf_counter() - start
            with lock:
                result.latencies_s.append(elapsed)
                result.extras.append(extra)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max_seconds + 60)
    result.wall_s = time.perf_counter() - started
    return result


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MiB (psutil)."""
    import psutil
    return round(psutil.Process(pid).memory_info().rss / 2 ** 20, 1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, seconds (psutil)."""
    import psutil
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"
