"""index_service.compaction_schedule: when the log is due for compaction, on a fake clock."""
from __future__ import annotations

import pytest

from index_service.compaction_schedule import DUTY_FACTOR, CompactionSchedule


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def schedule(clock, *, every_writes=0, every_bytes=0, after_s=0.0):
    return CompactionSchedule(every_writes=every_writes, every_bytes=every_bytes, after_s=after_s,
                              clock=clock)


def test_by_count_and_by_bytes_as_before(clock):
    s = schedule(clock, every_writes=3, every_bytes=100)
    assert not s.due(2, 99) and s.due(3, 0) and s.due(1, 100)
    assert not s.due(0, 10_000)  # nothing pending: nothing to fold in
    assert s.seconds_until_due(2) is None  # not by time


def test_by_time_counts_from_the_oldest_pending_write(clock):
    s = schedule(clock, after_s=60)
    assert s.seconds_until_due(0) is None and not s.due(0, 0)
    assert s.written(1) is True  # the first pending write starts the timer
    clock.now += 30
    assert s.written(2) is False  # later writes do not restart it
    assert not s.due(2, 0) and s.seconds_until_due(2) == 30
    clock.now += 30
    assert s.due(2, 0) and s.seconds_until_due(2) == 0


def test_after_a_compaction_the_timer_restarts_only_for_writes_that_came_meanwhile(clock):
    s = schedule(clock, after_s=10)
    s.written(1)
    clock.now += 10
    s.compacted(0.0, pending=0)
    assert s.seconds_until_due(0) is None and not s.due(0, 0)
    s.written(1)
    clock.now += 10
    assert s.due(1, 0)
    s.compacted(0.0, pending=2)  # two writes arrived while it ran: their timer starts now
    assert not s.due(2, 0) and s.seconds_until_due(2) == 10


def test_a_slow_compaction_spaces_the_next_one_by_time(clock):
    s = schedule(clock, after_s=5)
    s.written(1)
    clock.now += 5
    s.compacted(30.0, pending=1)  # it took 30 s
    clock.now += 5
    assert not s.due(1, 0)
    assert s.seconds_until_due(1) == pytest.approx(DUTY_FACTOR * 30 - 5)
    clock.now += DUTY_FACTOR * 30
    assert s.due(1, 0)


def test_a_slow_compaction_does_not_delay_compaction_by_count(clock):
    s = schedule(clock, every_writes=2, after_s=5)
    s.compacted(30.0, pending=0)
    s.written(2)
    assert s.due(2, 0)


def test_nothing_pending_means_nothing_due_and_a_compaction_resets_the_timer(clock):
    s = schedule(clock, after_s=5)
    s.written(1)
    clock.now += 9
    assert s.seconds_until_due(0) is None and not s.due(0, 0)  # emptied by a checkpoint
    s.compacted(0.0, pending=0)  # what compaction says after a checkpoint with nothing new
    assert s.written(1) is True and s.seconds_until_due(1) == 5  # a fresh timer
