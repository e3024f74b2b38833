"""index_service.wal: appends are durable and replayed in order, checkpoints drop what a snapshot
holds, I/O errors never ack. Damaged logs: test_wal_damage.py; payloads: test_wal_codec.py."""
from __future__ import annotations

import errno
import threading

import pytest

from index_service import wal as wal_module
from index_service.wal import WalError, WriteAheadLog

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def log_path(tmp_path):
    return tmp_path / "catalog.wal"


def _fill(path, payloads):
    with WriteAheadLog(path) as wal:
        return [wal.append("upsert", p) for p in payloads]


def _replayed(path, after_seq=0):
    with WriteAheadLog(path) as wal:
        return list(wal.replay(after_seq))


# -- appending and replaying ----------------------------------------------------------------------

def test_append_returns_consecutive_seqs_and_replay_returns_every_record(log_path):
    with WriteAheadLog(log_path) as wal:
        assert wal.last_sequence == 0
        assert wal.append("upsert", b"one") == 1
        assert wal.append("delete", b"two") == 2
        assert wal.append("upsert", {"ids": ["a", "b"], "n": 2}) == 3
        assert wal.last_sequence == 3
        assert list(wal.replay()) == [(1, "upsert", b"one"), (2, "delete", b"two"),
                                      (3, "upsert", {"ids": ["a", "b"], "n": 2})]
        assert [seq for seq, _, _ in wal.replay(after_seq=2)] == [3]


def test_reopen_replays_everything_and_continues_the_sequence(log_path):
    _fill(log_path, [b"a", b"", b"c" * 100_000])
    with WriteAheadLog(log_path) as wal:
        assert wal.last_sequence == 3 and wal.records_at_open == 3 and wal.torn_bytes_dropped == 0
        assert wal.append("delete", b"d") == 4
    assert _replayed(log_path) == [(1, "upsert", b"a"), (2, "upsert", b""),
                                   (3, "upsert", b"c" * 100_000), (4, "delete", b"d")]


def test_append_returns_only_after_an_fsync_that_follows_its_write(log_path, monkeypatch):
    # SIGKILL keeps the page cache, so the crash test cannot see a missing fsync: check the order.
    events = []
    real_write_all, real_fsync = wal_module._write_all, wal_module.os.fsync
    monkeypatch.setattr(wal_module, "_write_all",
                        lambda fd, data: (events.append("write"), real_write_all(fd, data)))
    monkeypatch.setattr(wal_module.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    with WriteAheadLog(log_path) as wal:
        for i in range(3):
            events.clear()
            wal.append("upsert", b"x" * i)
            assert events == ["write", "fsync"]


@pytest.mark.parametrize("op, payload, error", [
    ("insert", b"x", ValueError), ("", b"x", ValueError), ("upsert", "text", TypeError),
    ("upsert", None, TypeError), ("delete", [1, 2], TypeError)])
def test_a_rejected_append_writes_nothing(log_path, op, payload, error):
    with WriteAheadLog(log_path) as wal:
        wal.append("upsert", b"kept")
        with pytest.raises(error):
            wal.append(op, payload)
        assert wal.last_sequence == 1
        assert wal.append("upsert", b"next") == 2
    assert _replayed(log_path) == [(1, "upsert", b"kept"), (2, "upsert", b"next")]


def test_a_second_writer_is_refused_while_the_log_is_open(log_path):
    with WriteAheadLog(log_path):
        with pytest.raises(WalError, match="already open"):
            WriteAheadLog(log_path)
    WriteAheadLog(log_path).close()       # free again once closed


def test_a_closed_log_refuses_appends(log_path):
    wal = WriteAheadLog(log_path)
    wal.close()
    wal.close()
    with pytest.raises(WalError, match="closed"):
        wal.append("upsert", b"x")


def test_concurrent_appends_get_unique_seqs_and_share_fsyncs(log_path, monkeypatch):
    real_fsync, fsyncs = wal_module.os.fsync, []

    def slow_fsync(fd):                   # a slow disk: appends pile up behind one fsync
        fsyncs.append(fd)
        threading.Event().wait(0.01)
        real_fsync(fd)

    threads, per_thread = 8, 15
    acked: dict[int, bytes] = {}
    lock = threading.Lock()
    with WriteAheadLog(log_path) as wal:
        monkeypatch.setattr(wal_module.os, "fsync", slow_fsync)

        def writer(t):
            for i in range(per_thread):
                payload = f"thread {t} write {i}".encode()
                seq = wal.append("upsert", payload)
                with lock:
                    acked[seq] = payload

        workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        monkeypatch.undo()
    total = threads * per_thread
    assert sorted(acked) == list(range(1, total + 1))
    assert {seq: payload for seq, _, payload in _replayed(log_path)} == acked
    assert len(fsyncs) < total, "group commit: concurrent appends should share fsyncs"


def test_replay_while_appending_sees_a_consistent_prefix(log_path):
    with WriteAheadLog(log_path) as wal:
        stop = threading.Event()

        def writer():
            while not stop.is_set():
                wal.append("upsert", b"x" * 1000)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            for _ in range(20):
                seqs = [seq for seq, _, _ in wal.replay()]
                assert seqs == list(range(1, len(seqs) + 1))
        finally:
            stop.set()
            thread.join()


# -- checkpoints ---------------------------------------------------------------------------------

def test_checkpoint_drops_records_up_to_seq_and_survives_reopen(log_path):
    _fill(log_path, [b"1", b"2", b"3", b"4", b"5"])
    size_before = log_path.stat().st_size
    with WriteAheadLog(log_path) as wal:
        assert wal.pending_records == 5 and wal.size_bytes == size_before
        wal.checkpoint(3)
        assert wal.base_sequence == 3 and wal.last_sequence == 5 and wal.pending_records == 2
        assert wal.size_bytes == log_path.stat().st_size < size_before
        assert list(wal.replay(3)) == [(4, "upsert", b"4"), (5, "upsert", b"5")]
        assert wal.append("upsert", b"6") == 6
    assert log_path.stat().st_size < size_before + 20
    with WriteAheadLog(log_path) as wal:
        assert wal.base_sequence == 3
        assert [seq for seq, _, _ in wal.replay(3)] == [4, 5, 6]
        with pytest.raises(ValueError, match="checkpointed at seq 3"):
            wal.replay(0)                 # at the call, not on the first next()


def test_checkpoint_of_everything_keeps_the_sequence(log_path):
    _fill(log_path, [b"1", b"2"])
    with WriteAheadLog(log_path) as wal:
        wal.checkpoint(2)
        wal.checkpoint(1)                 # already covered: nothing to do
        assert list(wal.replay(2)) == []
    with WriteAheadLog(log_path) as wal:
        assert wal.last_sequence == 2 and wal.base_sequence == 2
        assert wal.append("delete", b"3") == 3


def test_checkpoint_past_the_last_write_is_refused(log_path):
    _fill(log_path, [b"1"])
    with WriteAheadLog(log_path) as wal:
        with pytest.raises(ValueError, match="last write is seq 1"):
            wal.checkpoint(2)
        assert list(wal.replay()) == [(1, "upsert", b"1")]


def test_a_checkpoint_that_crashed_before_its_rename_leaves_the_log_intact(log_path):
    _fill(log_path, [b"1", b"2"])
    tmp = log_path.with_name(log_path.name + ".checkpoint.tmp")
    tmp.write_bytes(b"half a checkpoint")
    assert _replayed(log_path) == [(1, "upsert", b"1"), (2, "upsert", b"2")]
    assert not tmp.exists()


def test_appends_racing_a_checkpoint_are_all_kept(log_path):
    with WriteAheadLog(log_path) as wal:
        acked, stop = [], threading.Event()

        def writer():
            while not stop.is_set():
                acked.append(wal.append("upsert", b"y" * 200))

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            checkpoints = []
            while len(checkpoints) < 20:
                if wal.last_sequence > (checkpoints[-1] if checkpoints else 0):
                    checkpoints.append(wal.last_sequence)
                    wal.checkpoint(checkpoints[-1])
        finally:
            stop.set()
            thread.join()
    last = checkpoints[-1]
    assert [seq for seq, _, _ in _replayed(log_path, last)] == [s for s in acked if s > last]


# -- I/O errors: nothing acknowledged, nothing replayed -------------------------------------------

def test_a_failed_write_is_cut_off_and_the_log_keeps_working(log_path, monkeypatch):
    real_write_all = wal_module._write_all

    def disk_full(fd, data):
        real_write_all(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    with WriteAheadLog(log_path) as wal:
        wal.append("upsert", b"before")
        monkeypatch.setattr(wal_module, "_write_all", disk_full)
        with pytest.raises(WalError, match="No space left"):
            wal.append("upsert", b"rejected" * 10)
        monkeypatch.undo()
        assert wal.append("upsert", b"after") == 2
    assert _replayed(log_path) == [(1, "upsert", b"before"), (2, "upsert", b"after")]


def test_a_failed_fsync_rejects_the_write_and_stops_the_log(log_path, monkeypatch):
    with WriteAheadLog(log_path) as wal:
        wal.append("upsert", b"before")

        def broken_fsync(fd):
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(wal_module.os, "fsync", broken_fsync)
        with pytest.raises(WalError, match="fsync failed"):
            wal.append("upsert", b"rejected")
        monkeypatch.undo()
        with pytest.raises(WalError, match="restart the service"):
            wal.append("upsert", b"refused")
        assert wal.last_sequence == 1
    assert _replayed(log_path) == [(1, "upsert", b"before")]
