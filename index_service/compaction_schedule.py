"""When the write-ahead log is due for compaction (pure logic; compaction.Compactor acts on it).

Due when writes are pending and any of these holds:
- `every_writes` writes are pending, or the log holds `every_bytes` bytes (0 = not by that rule);
- the oldest pending write is `after_s` seconds old (0 = not by time): so that a write is folded
  into the artifacts within about `after_s` seconds, however few writes follow it. Until then
  lexical search does not find words that only new products use, and new vectors sit in the
  exact write layer (docs/reliability.md#compaction).

A compaction started by time waits at least DUTY_FACTOR times the last compaction's duration after
it ended, so that on a catalog whose compaction is slow (HNSW at 1M products) a steady trickle of
writes keeps the compaction thread busy at most 1 / (DUTY_FACTOR + 1) of the time.
"""
from __future__ import annotations

import time
from collections.abc import Callable

DUTY_FACTOR = 10.0


class CompactionSchedule:
    """`written` is called by writers, `compacted` by the compaction thread under the same lock as
    the writes (so that a write between the two is never missed); the rest only reads."""

    def __init__(self, *, every_writes: int, every_bytes: int, after_s: float,
                 clock: Callable[[], float] = time.monotonic):
        self.every_writes, self.every_bytes, self.after_s = every_writes, every_bytes, after_s
        self._clock = clock
        self._first_pending_at: float | None = None  # when the oldest pending write came
        self._quiet_until = float("-inf")  # no compaction by time before this

    def written(self, pending: int) -> bool:
        """After an acknowledged write, with `pending` writes now in the log; True when this write
        is the first pending one (a timer must be started)."""
        if pending > 0 and self._first_pending_at is None:
            self._first_pending_at = self._clock()
            return True
        return False

    def compacted(self, seconds: float, pending: int) -> None:
        """A compaction that took `seconds` just ended, `pending` writes arrived meanwhile."""
        now = self._clock()
        self._quiet_until = now + DUTY_FACTOR * seconds
        self._first_pending_at = now if pending > 0 else None

    def _due_by_time_at(self) -> float | None:
        if self.after_s <= 0 or self._first_pending_at is None:
            return None
        return max(self._first_pending_at + self.after_s, self._quiet_until)

    def due(self, pending: int, size_bytes: int) -> bool:
        if pending <= 0:
            return False
        if self.every_writes > 0 and pending >= self.every_writes:
            return True
        if self.every_bytes > 0 and size_bytes >= self.every_bytes:
            return True
        at = self._due_by_time_at()
        return at is not None and self._clock() >= at

    def seconds_until_due(self, pending: int) -> float | None:
        """How long until compaction is due by time (0: now), with `pending` writes in the log;
        None: not by time, or nothing pending."""
        if pending <= 0:
            return None
        at = self._due_by_time_at()
        return None if at is None else max(0.0, at - self._clock())
