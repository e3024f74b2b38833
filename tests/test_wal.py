"""index_service.wal: appends are durable and replayed in order, checkpoints drop what a snapshot
holds, a torn tail is cut off on open, damage inside the log is refused, I/O errors never ack."""
from __future__ import annotations

import errno
import threading

import numpy as np
import pytest

from client.generated.recsys.v1 import index_pb2
from index_service import wal as wal_module
from index_service import wal_format
from index_service.wal import WalCorruptError, WalError, WriteAheadLog
from index_service.wal_codec import (WalFormatError, decode_delete, decode_upsert, encode_delete,
                                     encode_upsert)

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


# -- crashes mid-write: torn tails ---------------------------------------------------------------

def _record_bounds(path):
    """(start, end) of each record, read from the format described in wal.py."""
    data, offset, bounds = path.read_bytes(), wal_format.HEADER.size, []
    while offset < len(data):
        body_len, _ = wal_format.RECORD_HEAD.unpack_from(data, offset)
        end = offset + wal_format.RECORD_HEAD.size + body_len
        bounds.append((offset, end))
        offset = end
    return bounds


def test_a_record_cut_short_at_any_byte_is_dropped_alone(log_path):
    _fill(log_path, [b"first", b"second", b"third" * 10])
    full = log_path.read_bytes()
    start, end = _record_bounds(log_path)[-1]
    for cut in range(start + 1, end):
        log_path.write_bytes(full[:cut])
        with WriteAheadLog(log_path) as wal:
            assert wal.torn_bytes_dropped == cut - start
            assert list(wal.replay()) == [(1, "upsert", b"first"), (2, "upsert", b"second")]
            assert wal.append("upsert", b"again") == 3
        assert _replayed(log_path)[-1] == (3, "upsert", b"again")


@pytest.mark.parametrize("tail", [b"\x00" * 4096, b"\xff" * 7, bytes(range(256)) * 3,
                                  b"\x10\x00\x00\x00\x00\x00\x00\x00garbage!"])
def test_garbage_or_zeros_after_the_last_record_are_dropped(log_path, tail):
    _fill(log_path, [b"a", b"b"])
    with open(log_path, "ab") as f:
        f.write(tail)
    with WriteAheadLog(log_path) as wal:
        assert wal.torn_bytes_dropped == len(tail)
        assert list(wal.replay()) == [(1, "upsert", b"a"), (2, "upsert", b"b")]
    assert _replayed(log_path) == [(1, "upsert", b"a"), (2, "upsert", b"b")]


def test_a_bad_crc_in_the_last_record_drops_it(log_path):
    _fill(log_path, [b"a", b"bbbbbbbb"])
    data = bytearray(log_path.read_bytes())
    data[-2] ^= 0x01
    log_path.write_bytes(bytes(data))
    assert _replayed(log_path) == [(1, "upsert", b"a")]


def test_a_bad_record_before_whole_ones_is_dropped_with_them_and_kept_aside(log_path):
    _fill(log_path, [b"a" * 50, b"b" * 50, b"c" * 50])
    start, end = _record_bounds(log_path)[1]
    data = bytearray(log_path.read_bytes())
    data[end - 5] ^= 0xFF
    log_path.write_bytes(bytes(data))
    with WriteAheadLog(log_path) as wal:
        assert list(wal.replay()) == [(1, "upsert", b"a" * 50)]
        assert wal.torn_bytes_dropped == len(data) - start
    aside, = log_path.parent.glob(f"{log_path.name}.dropped-{start}-*")
    assert aside.read_bytes() == bytes(data[start:])


def test_a_whole_record_out_of_sequence_is_refused(log_path):
    _fill(log_path, [b"a", b"b"])
    start, end = _record_bounds(log_path)[0]
    data = log_path.read_bytes()
    log_path.write_bytes(data + data[start:end])       # record 1 again where 3 should be
    with pytest.raises(WalCorruptError, match=f"{log_path.name}.*out of sequence"):
        WriteAheadLog(log_path)
    assert log_path.read_bytes() == data + data[start:end]   # left as it was


@pytest.mark.parametrize("content", [b"", b"RSYSWAL1", b"not a log at all, just text\n" * 3])
def test_a_file_that_is_not_a_log_is_refused_with_its_name(log_path, content):
    log_path.write_bytes(content)
    with pytest.raises(WalCorruptError, match=log_path.name):
        WriteAheadLog(log_path)


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


# -- payload helpers ------------------------------------------------------------------------------

def _product(i, **extra):
    return index_pb2.Product(id=f"id-{i}", title=f"Chair {i} ü 椅子", brand="Acme",
                             categories=["Home", "Chairs"], category="Chairs",
                             images=["http://x/1.jpg"], attributes={"sku": str(i)}, **extra)


def test_upsert_payload_round_trips_products_and_exact_vectors():
    products = [_product(0, price=19.5), _product(1)]   # the second has no price: stays unset
    vectors = np.random.default_rng(0).standard_normal((2, 384)).astype(np.float32)
    decoded, decoded_vectors = decode_upsert(encode_upsert(products, vectors))
    assert decoded == products
    assert not decoded[1].HasField("price")
    assert decoded_vectors.dtype == np.float32 and decoded_vectors.flags.writeable
    np.testing.assert_array_equal(decoded_vectors, vectors)


def test_upsert_payload_survives_the_log(log_path):
    vectors = np.arange(12, dtype=np.float64).reshape(3, 4)   # converted to float32
    _fill(log_path, [encode_upsert([_product(i) for i in range(3)], vectors)])
    (_, op, payload), = _replayed(log_path)
    products, decoded = decode_upsert(payload)
    assert op == "upsert" and [p.id for p in products] == ["id-0", "id-1", "id-2"]
    np.testing.assert_array_equal(decoded, vectors.astype(np.float32))


def test_upsert_payload_of_no_products():
    products, vectors = decode_upsert(encode_upsert([], np.zeros((0, 384), np.float32)))
    assert products == [] and vectors.shape == (0, 384)


@pytest.mark.parametrize("shape", [(3, 4), (2,), (2, 4, 1)])
def test_upsert_needs_one_vector_row_per_product(shape):
    with pytest.raises(ValueError, match="one row per product"):
        encode_upsert([_product(0), _product(1)], np.zeros(shape, np.float32))


def test_delete_payload_round_trips_ids():
    ids = ["a", "", "ü 椅子", "x" * 10_000]
    assert decode_delete(encode_delete(ids)) == ids
    assert decode_delete(encode_delete([])) == []


@pytest.mark.parametrize("decode, payload", [
    (decode_upsert, b""), (decode_upsert, b"DEL1\x00\x00\x00\x00"),
    (decode_upsert, encode_upsert([_product(0)], np.zeros((1, 4)))[:-1]),
    (decode_upsert, encode_upsert([_product(0)], np.zeros((1, 4)))[:20]),
    (decode_delete, b"UPS1"), (decode_delete, encode_delete(["abc"])[:-1]),
    (decode_delete, encode_delete(["abc"]) + b"x")])
def test_decoding_a_wrong_payload_says_so(decode, payload):
    with pytest.raises(WalFormatError):
        decode(payload)
