"""index_service.wal on damaged logs: a torn tail (a crash mid-write) is cut off on open, damage
inside the log is refused or set aside, a file that is not a log is refused with its name."""
from __future__ import annotations

import pytest

from index_service import wal_format
from index_service.wal import WalCorruptError, WriteAheadLog
from tests.test_wal import _fill, _replayed, log_path  # noqa: F401 - log_path: a fixture

pytestmark = pytest.mark.timeout(60)


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
