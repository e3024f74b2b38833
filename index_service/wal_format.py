"""The write-ahead log's file format (wal.py holds the log itself): reading, checking and writing
records, and recovering a file a crash left behind.

File format (all integers little-endian):

    header   magic b"RSYSWAL1" | base_seq u64 | crc32(magic + base_seq) u32          (20 bytes)
    record*  body_len u32 | crc32(body) u32 | body
    body     seq u64 | op u8 (1 upsert, 2 delete) | kind u8 (0 bytes, 1 JSON) | payload

`base_seq` is the checkpoint: every record in the file has seq > base_seq, and the records run
base_seq+1, base_seq+2, ... without gaps.

Recovery (`recover`): a torn tail (a record cut short, a bad CRC, garbage or zeros after the last
record, as a crash mid-write leaves) is truncated with a warning. When whole records follow the
bad one (a crash can do that: the unsynced pages of one group commit may reach the disk out of
order; so can damage to synced data) the dropped bytes are first saved beside the log as
`<path>.dropped-<offset>-<ns>` and an error is logged. A whole, CRC-valid record out of sequence
cannot come from a crash: that raises `WalCorruptError` naming the file.
"""
from __future__ import annotations

import json
import logging
import os
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("index_service.wal")

MAGIC = b"RSYSWAL1"
HEADER = struct.Struct("<8sQI")
RECORD_HEAD = struct.Struct("<II")        # body_len, crc32(body)
BODY_HEAD = struct.Struct("<QBB")         # seq, op, kind
MAX_RECORD_BYTES = 512 * 1024 * 1024      # a longer length field is garbage, not a record

OPS = {"upsert": 1, "delete": 2}
OP_NAMES = {code: name for name, code in OPS.items()}
KIND_BYTES, KIND_JSON = 0, 1


class WalError(Exception):
    """The log cannot take writes (I/O failure, closed, or already open elsewhere)."""


class WalCorruptError(WalError):
    """The file is damaged before its last intact record: acknowledged writes would be lost."""


def crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def header(base_seq: int) -> bytes:
    head = MAGIC + struct.pack("<Q", base_seq)
    return HEADER.pack(MAGIC, base_seq, crc(head))


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def encode_payload(payload: bytes | dict) -> tuple[int, bytes]:
    """(kind, bytes) of a record's payload; ValueError past the record limit."""
    if isinstance(payload, dict):
        kind, data = KIND_JSON, json.dumps(payload, separators=(",", ":")).encode()
    elif isinstance(payload, (bytes, bytearray, memoryview)):
        kind, data = KIND_BYTES, bytes(payload)
    else:
        raise TypeError(f"payload must be bytes or a dict, not {type(payload).__name__}")
    if BODY_HEAD.size + len(data) > MAX_RECORD_BYTES:
        raise ValueError(f"payload of {len(data)} bytes is over the {MAX_RECORD_BYTES}-byte "
                         "record limit: split the batch")
    return kind, data


def record(seq: int, op: int, kind: int, data: bytes) -> bytes:
    """One whole record, as appended to the file."""
    body = BODY_HEAD.pack(seq, op, kind) + data
    return RECORD_HEAD.pack(len(body), crc(body)) + body


def decode_payload(kind: int, payload: bytes):
    return json.loads(payload) if kind == KIND_JSON else payload


class Scan:
    """What reading a log file found: its base, its records' extent and any torn tail."""

    def __init__(self, base_seq: int):
        self.base_seq = base_seq
        self.last_seq = base_seq
        self.end = HEADER.size            # offset just past the last intact record
        self.count = 0
        self.problem = ""                 # why reading stopped before the end of the file


def read_header(path: Path, data: bytes) -> int:
    if len(data) < HEADER.size:
        raise WalCorruptError(f"{path}: {len(data)} bytes, shorter than the {HEADER.size}-byte "
                              "header: not a recsys write-ahead log")
    magic, base_seq, check = HEADER.unpack_from(data)
    if magic != MAGIC or check != crc(data[:16]):
        raise WalCorruptError(f"{path}: bad header (magic {magic!r}): not a recsys write-ahead "
                              "log, or its header is damaged")
    return base_seq


def parse_record(data: bytes, offset: int, expected_seq: int):
    """(end, seq, op, kind, payload) of the record at `offset`, or a string saying what is wrong."""
    if offset + RECORD_HEAD.size > len(data):
        return f"record header cut short at offset {offset}"
    body_len, check = RECORD_HEAD.unpack_from(data, offset)
    if body_len < BODY_HEAD.size or body_len > MAX_RECORD_BYTES:
        return f"impossible record length {body_len} at offset {offset}"
    start = offset + RECORD_HEAD.size
    end = start + body_len
    if end > len(data):
        return f"record at offset {offset} cut short ({len(data) - start} of {body_len} bytes)"
    body = data[start:end]
    if crc(body) != check:
        return f"CRC mismatch in the record at offset {offset}"
    seq, op, kind = BODY_HEAD.unpack_from(body)
    if seq != expected_seq or op not in OP_NAMES or kind not in (KIND_BYTES, KIND_JSON):
        return f"record at offset {offset} has seq {seq} op {op} kind {kind}, expected seq {expected_seq}"
    return end, seq, op, kind, body[BODY_HEAD.size:]


def records(data: bytes, scan: Scan, after_seq: int = 0):
    """Yield (seq, op, kind, payload) of the intact records in order; fill in `scan`."""
    offset, expected = HEADER.size, scan.base_seq + 1
    while offset < len(data):
        parsed = parse_record(data, offset, expected)
        if isinstance(parsed, str):
            scan.problem = parsed
            return
        offset, seq, op, kind, payload = parsed
        scan.end, scan.last_seq, scan.count = offset, seq, scan.count + 1
        expected += 1
        if seq > after_seq:
            yield seq, op, kind, payload


def _record_is_whole(data: bytes, offset: int) -> bool:
    """True when a record with a valid CRC starts at `offset` (whatever its seq)."""
    if offset + RECORD_HEAD.size > len(data):
        return False
    body_len, check = RECORD_HEAD.unpack_from(data, offset)
    start = offset + RECORD_HEAD.size
    return (BODY_HEAD.size <= body_len <= MAX_RECORD_BYTES and start + body_len <= len(data)
            and crc(data[start:start + body_len]) == check)


def _next_record_is_whole(data: bytes, offset: int) -> bool:
    """True when the (bad) record at `offset` has a length, and a whole record follows it."""
    if offset + RECORD_HEAD.size > len(data):
        return False
    (body_len, _check) = RECORD_HEAD.unpack_from(data, offset)
    return (BODY_HEAD.size <= body_len <= MAX_RECORD_BYTES
            and _record_is_whole(data, offset + RECORD_HEAD.size + body_len))


def recover(path: Path, fd: int, keep_aside: Callable[[Path, bytes], None]) -> tuple[Scan, int]:
    """Read the whole file open at `fd`, check every record, and cut off a torn tail (saving it
    with `keep_aside(path, bytes)` when whole records follow). Returns (scan, bytes dropped)."""
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0)
    scan = Scan(read_header(path, data))
    for _ in records(data, scan):
        pass
    dropped = size - scan.end
    if not dropped:
        return scan, dropped
    if _record_is_whole(data, scan.end):
        raise WalCorruptError(
            f"{path}: {scan.problem}: a whole record out of sequence cannot come from a "
            "crash mid-write (was the file edited or replaced?). Refusing to open it")
    if _next_record_is_whole(data, scan.end):
        # A crash can leave this too (unsynced pages of one group commit reach the disk out of
        # order), but so can damage to synced data: keep the bytes for a person to look at.
        aside = path.with_name(f"{path.name}.dropped-{scan.end}-{time.time_ns()}")
        keep_aside(aside, data[scan.end:])
        log.error("%s: %s, and whole records follow it: dropping %d bytes from offset %d "
                  "(kept in %s); if the machine did not crash, acknowledged writes may be lost",
                  path, scan.problem, dropped, scan.end, aside)
    else:
        log.warning("%s: dropping a torn tail of %d bytes (%s); %d intact records up to seq %d",
                    path, dropped, scan.problem, scan.count, scan.last_seq)
    os.ftruncate(fd, scan.end)
    os.fsync(fd)
    return scan, dropped
