"""A durable write-ahead log for catalog writes: acknowledged only once on disk, replayed on start.

Why an append-only file and not SQLite (WAL mode, synchronous=FULL)? Both are durable. The log is
simpler for this job: records are opaque blobs that are only ever appended and read back in order,
so a table, pages and a query planner buy nothing; one `write` + one `fsync` per batch of
concurrent appends (group commit) is the least disk work a durable write can cost; the format is
twenty lines of `struct`, so what a crash can leave behind (a torn last record) is detected and
repaired here, visibly, instead of inside a library; and checkpointing is one atomic `rename`.

File format (all integers little-endian):

    header   magic b"RSYSWAL1" | base_seq u64 | crc32(magic + base_seq) u32          (20 bytes)
    record*  body_len u32 | crc32(body) u32 | body
    body     seq u64 | op u8 (1 upsert, 2 delete) | kind u8 (0 bytes, 1 JSON) | payload

`base_seq` is the checkpoint: every record in the file has seq > base_seq, and the records run
base_seq+1, base_seq+2, ... without gaps.

Guarantees
- `append` returns only after its record is written and fsynced: an acknowledged write survives a
  crash of the process or the machine. Concurrent appends share one fsync (group commit).
- A write that raised was not acknowledged; after a failed write the file is cut back to its last
  durable length and the log refuses further appends (`WalError`) until it is reopened, because
  after a failed fsync the kernel may already have dropped the unsynced pages (PostgreSQL's
  "fsyncgate"): retrying could acknowledge data that is not on disk.
- On open, a torn tail (a record cut short, a bad CRC, garbage or zeros after the last record, as
  a crash mid-write leaves) is truncated with a warning; the log opens. When whole records follow
  the bad one (a crash can do that: the unsynced pages of one group commit may reach the disk out of
  order; so can damage to synced data) the dropped bytes are first saved beside the log as
  `<path>.dropped-<offset>-<ns>` and an error is logged. A whole, CRC-valid record out of sequence
  cannot come from a crash: that raises `WalCorruptError` naming the file.
- `checkpoint(n)` drops records <= n atomically: the records > n are copied to a new file that is
  fsynced and renamed over the old one, then the directory is fsynced. A crash at any moment
  leaves either the old file or the new one, both valid.
- One process at a time: `<path>.lock` is flock()ed while open; a second open fails clearly.

Payloads are opaque bytes (or a JSON-able dict). For catalog writes use the helpers below:
`encode_upsert(products, vectors)` stores serialized `recsys.v1.Product` messages with their
float32 vectors, so a replay needs no embedder; `encode_delete(ids)` stores product ids.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from client.generated.recsys.v1 import index_pb2

from .durable_io import fsync_dir

log = logging.getLogger(__name__)

MAGIC = b"RSYSWAL1"
_HEADER = struct.Struct("<8sQI")
_RECORD_HEAD = struct.Struct("<II")       # body_len, crc32(body)
_BODY_HEAD = struct.Struct("<QBB")        # seq, op, kind
MAX_RECORD_BYTES = 512 * 1024 * 1024      # a longer length field is garbage, not a record

OPS = {"upsert": 1, "delete": 2}
_OP_NAMES = {code: name for name, code in OPS.items()}
_KIND_BYTES, _KIND_JSON = 0, 1


class WalError(Exception):
    """The log cannot take writes (I/O failure, closed, or already open elsewhere)."""


class WalCorruptError(WalError):
    """The file is damaged before its last intact record: acknowledged writes would be lost."""


class WalFormatError(ValueError):
    """A payload given to a decode_* helper is not what the matching encode_* helper writes."""


def _crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def _header(base_seq: int) -> bytes:
    head = MAGIC + struct.pack("<Q", base_seq)
    return _HEADER.pack(MAGIC, base_seq, _crc(head))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class _Scan:
    """What reading a log file found: its base, its records' extent and any torn tail."""

    def __init__(self, base_seq: int):
        self.base_seq = base_seq
        self.last_seq = base_seq
        self.end = _HEADER.size           # offset just past the last intact record
        self.count = 0
        self.problem = ""                 # why reading stopped before the end of the file


def _read_header(path: Path, data: bytes) -> int:
    if len(data) < _HEADER.size:
        raise WalCorruptError(f"{path}: {len(data)} bytes, shorter than the {_HEADER.size}-byte "
                              "header: not a recsys write-ahead log")
    magic, base_seq, crc = _HEADER.unpack_from(data)
    if magic != MAGIC or crc != _crc(data[:16]):
        raise WalCorruptError(f"{path}: bad header (magic {magic!r}): not a recsys write-ahead "
                              "log, or its header is damaged")
    return base_seq


def _parse_record(data: bytes, offset: int, expected_seq: int):
    """(end, seq, op, kind, payload) of the record at `offset`, or a string saying what is wrong."""
    if offset + _RECORD_HEAD.size > len(data):
        return f"record header cut short at offset {offset}"
    body_len, crc = _RECORD_HEAD.unpack_from(data, offset)
    if body_len < _BODY_HEAD.size or body_len > MAX_RECORD_BYTES:
        return f"impossible record length {body_len} at offset {offset}"
    start = offset + _RECORD_HEAD.size
    end = start + body_len
    if end > len(data):
        return f"record at offset {offset} cut short ({len(data) - start} of {body_len} bytes)"
    body = data[start:end]
    if _crc(body) != crc:
        return f"CRC mismatch in the record at offset {offset}"
    seq, op, kind = _BODY_HEAD.unpack_from(body)
    if seq != expected_seq or op not in _OP_NAMES or kind not in (_KIND_BYTES, _KIND_JSON):
        return f"record at offset {offset} has seq {seq} op {op} kind {kind}, expected seq {expected_seq}"
    return end, seq, op, kind, body[_BODY_HEAD.size:]


def _records(data: bytes, scan: _Scan, after_seq: int = 0):
    """Yield (seq, op, kind, payload) of the intact records in order; fill in `scan`."""
    offset, expected = _HEADER.size, scan.base_seq + 1
    while offset < len(data):
        parsed = _parse_record(data, offset, expected)
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
    if offset + _RECORD_HEAD.size > len(data):
        return False
    body_len, crc = _RECORD_HEAD.unpack_from(data, offset)
    start = offset + _RECORD_HEAD.size
    return (_BODY_HEAD.size <= body_len <= MAX_RECORD_BYTES and start + body_len <= len(data)
            and _crc(data[start:start + body_len]) == crc)


def _next_record_is_whole(data: bytes, offset: int) -> bool:
    """True when the (bad) record at `offset` has a length, and a whole record follows it."""
    if offset + _RECORD_HEAD.size > len(data):
        return False
    (body_len, _crc_value) = _RECORD_HEAD.unpack_from(data, offset)
    return (_BODY_HEAD.size <= body_len <= MAX_RECORD_BYTES
            and _record_is_whole(data, offset + _RECORD_HEAD.size + body_len))


def _decode_payload(kind: int, payload: bytes):
    return json.loads(payload) if kind == _KIND_JSON else payload


class WriteAheadLog:
    """An append-only, fsynced, CRC-checked log of catalog writes. Thread-safe.

    >>> wal = WriteAheadLog(data_dir / "catalog.wal")
    >>> seq = wal.append("upsert", encode_upsert(products, vectors))   # on disk when it returns
    >>> for seq, op, payload in wal.replay(after_seq=manifest_seq): ...
    >>> wal.checkpoint(snapshot_seq)                                  # after the snapshot is saved
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._tmp_path = self.path.with_name(self.path.name + ".checkpoint.tmp")
        self._write_lock = threading.Lock()   # order: _write_lock, then _sync_lock
        self._sync_lock = threading.Lock()
        self._failed: str | None = None
        self._fd: int | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._lock(self.path.with_name(self.path.name + ".lock"))
        try:
            if self._tmp_path.exists():       # a checkpoint that crashed before its rename
                self._tmp_path.unlink()
            if not self.path.exists():
                self._create(self.path, _header(0))
            fd = os.open(self.path, os.O_RDWR)
            try:
                scan, self.torn_bytes_dropped = self._recover(fd)
            except BaseException:
                os.close(fd)
                raise
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._fd = fd
        self._base_seq = scan.base_seq
        # (seq, end offset) of the last record written / fsynced: one tuple each, so that a
        # reader holding only one of the locks never sees a seq with another record's offset.
        self._written = self._durable = (scan.last_seq, scan.end)
        self.records_at_open = scan.count

    # -- opening ----------------------------------------------------------------------------

    def _create(self, path: Path, content: bytes) -> None:
        """Write a whole file atomically: temporary file, fsync, rename, fsync the directory."""
        fd = os.open(self._tmp_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self._tmp_path, path)
        fsync_dir(path.parent)

    def _lock(self, lock_path: Path) -> int:
        """Hold an exclusive flock on `lock_path` while open (the kernel drops it if we die)."""
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WalError(f"{self.path} is already open in another process (one writer at a "
                           "time: stop the other index service using this --data-dir)") from None
        return fd

    def _recover(self, fd: int) -> tuple[_Scan, int]:
        """Read the whole file, check every record, and cut off a torn tail."""
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0)
        scan = _Scan(_read_header(self.path, data))
        for _ in _records(data, scan):
            pass
        dropped = size - scan.end
        if not dropped:
            return scan, dropped
        if _record_is_whole(data, scan.end):
            raise WalCorruptError(
                f"{self.path}: {scan.problem}: a whole record out of sequence cannot come from a "
                "crash mid-write (was the file edited or replaced?). Refusing to open it")
        if _next_record_is_whole(data, scan.end):
            # A crash can leave this too (unsynced pages of one group commit reach the disk out of
            # order), but so can damage to synced data: keep the bytes for a person to look at.
            aside = self.path.with_name(f"{self.path.name}.dropped-{scan.end}-{time.time_ns()}")
            self._create(aside, data[scan.end:])
            log.error("%s: %s, and whole records follow it: dropping %d bytes from offset %d "
                      "(kept in %s); if the machine did not crash, acknowledged writes may be lost",
                      self.path, scan.problem, dropped, scan.end, aside)
        else:
            log.warning("%s: dropping a torn tail of %d bytes (%s); %d intact records up to seq %d",
                        self.path, dropped, scan.problem, scan.count, scan.last_seq)
        os.ftruncate(fd, scan.end)
        os.fsync(fd)
        return scan, dropped

    # -- writing ----------------------------------------------------------------------------

    @property
    def last_sequence(self) -> int:
        """The seq of the last acknowledged (durable) write; the checkpoint seq when none since."""
        return self._durable[0]

    @property
    def base_sequence(self) -> int:
        """The last checkpoint: records <= this seq have been dropped."""
        return self._base_seq

    @property
    def pending_records(self) -> int:
        """Acknowledged records since the last checkpoint (a compaction trigger)."""
        return self._durable[0] - self._base_seq

    @property
    def size_bytes(self) -> int:
        """Bytes of acknowledged log on disk (another compaction trigger; replay reads it all)."""
        return self._durable[1]

    def append(self, op: str, payload: bytes | dict) -> int:
        """Append one record and return its seq once it is on disk (fsynced)."""
        if op not in OPS:
            raise ValueError(f"op must be one of {sorted(OPS)}, not {op!r}")
        if isinstance(payload, dict):
            kind, data = _KIND_JSON, json.dumps(payload, separators=(",", ":")).encode()
        elif isinstance(payload, (bytes, bytearray, memoryview)):
            kind, data = _KIND_BYTES, bytes(payload)
        else:
            raise TypeError(f"payload must be bytes or a dict, not {type(payload).__name__}")
        if _BODY_HEAD.size + len(data) > MAX_RECORD_BYTES:
            raise ValueError(f"payload of {len(data)} bytes is over the {MAX_RECORD_BYTES}-byte "
                             "record limit: split the batch")
        with self._write_lock:
            self._check_usable()
            seq, end = self._written[0] + 1, self._written[1]
            body = _BODY_HEAD.pack(seq, OPS[op], kind) + data
            record = _RECORD_HEAD.pack(len(body), _crc(body)) + body
            try:
                os.lseek(self._fd, end, os.SEEK_SET)
                _write_all(self._fd, record)
            except OSError as exc:            # e.g. disk full: cut the partial record off
                with self._sync_lock:
                    self._cut_back(end, f"write failed: {exc}", poison=False)
                raise WalError(f"{self.path}: write failed, nothing acknowledged: {exc}") from exc
            self._written = (seq, end + len(record))
        self._sync_through(seq)
        return seq

    def _sync_through(self, seq: int) -> None:
        """Group commit: whoever holds the sync lock fsyncs everything written so far."""
        with self._sync_lock:
            if self._durable[0] >= seq:         # a concurrent append's fsync covered ours
                return
            self._check_usable()
            target = self._written
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._failed = error = f"fsync failed: {exc}"
            else:
                self._durable = target
                return
        with self._write_lock, self._sync_lock:  # the lock order: write, then sync
            self._cut_back(self._durable[1], error, poison=True)
        raise WalError(f"{self.path}: {error}; write not acknowledged")

    def _check_usable(self) -> None:
        if self._fd is None:
            raise WalError(f"{self.path}: the log is closed")
        if self._failed:
            raise WalError(f"{self.path}: the log stopped taking writes after an I/O error "
                           f"({self._failed}); restart the service to reopen it")

    def _cut_back(self, end: int, reason: str, *, poison: bool) -> None:
        """After an I/O error: truncate to `end`. After a failed fsync (`poison`), or when even
        that fails, refuse writes until reopened: the kernel may have dropped unsynced pages."""
        log.error("%s: %s; cutting the file back to %d bytes", self.path, reason, end)
        try:
            os.ftruncate(self._fd, end)
            if end == self._durable[1]:
                self._written = self._durable
        except OSError as exc:
            poison, reason = True, f"{reason}; truncate failed: {exc}"
        if poison:
            self._failed = reason
            log.error("%s: refusing further writes until reopened", self.path)

    # -- reading ----------------------------------------------------------------------------

    def replay(self, after_seq: int = 0) -> Iterator[tuple[int, str, bytes | dict]]:
        """Yield (seq, op, payload) for every acknowledged record with seq > after_seq, in order.

        Reads the acknowledged records as they are when called (appends made later are not
        included). Raises ValueError at once when after_seq < base_sequence: those records were
        dropped by a checkpoint, so replaying from there would silently skip writes.
        """
        with self._sync_lock:
            self._check_open()
            if after_seq < self._base_seq:
                raise ValueError(
                    f"cannot replay after seq {after_seq}: the log was checkpointed at seq "
                    f"{self._base_seq} and no longer holds older records; load the snapshot "
                    f"saved at seq >= {self._base_seq} first")
            data = os.pread(self._fd, self._durable[1], 0)
        scan = _Scan(_read_header(self.path, data))
        return ((seq, _OP_NAMES[op], _decode_payload(kind, payload))
                for seq, op, kind, payload in _records(data, scan, after_seq))

    def _check_open(self) -> None:
        if self._fd is None:
            raise WalError(f"{self.path}: the log is closed")

    # -- compaction -------------------------------------------------------------------------

    def checkpoint(self, seq: int) -> None:
        """Drop every record with seq <= `seq`, atomically (call once a snapshot holds them).

        Appends wait while the surviving records (those after `seq`) are copied."""
        with self._write_lock, self._sync_lock:
            self._check_usable()
            written_seq, written_end = self._written
            if seq > written_seq:
                raise ValueError(f"cannot checkpoint at seq {seq}: the last write is seq "
                                 f"{written_seq}")
            if seq <= self._base_seq:
                return
            data = os.pread(self._fd, written_end, 0)
            scan = _Scan(self._base_seq)
            keep_from = written_end
            offset = _HEADER.size
            for record_seq, _op, _kind, _payload in _records(data, scan):
                if record_seq > seq:
                    keep_from = offset
                    break
                offset = scan.end
            tail = data[keep_from:written_end]
            self._rewrite(seq, tail, written_seq)
            log.info("%s: checkpoint at seq %d, %d bytes of later records kept",
                     self.path, seq, len(tail))

    def start_after(self, seq: int) -> None:
        """Number the next write seq + 1, for a log that holds no record (new, or deleted by
        hand) beside artifacts that already hold the writes through `seq`. ValueError when the
        log holds records."""
        with self._write_lock, self._sync_lock:
            self._check_usable()
            if self._written[0] != self._base_seq:
                raise ValueError(f"{self.path} holds records {self._base_seq + 1}.."
                                 f"{self._written[0]}: it cannot be renumbered")
            if seq > self._base_seq:
                self._rewrite(seq, b"", seq)

    def _rewrite(self, base_seq: int, tail: bytes, last_seq: int) -> None:
        """Replace the file by a header at `base_seq` and `tail`, atomically (both locks held)."""
        fd = os.open(self._tmp_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, _header(base_seq) + tail)
            os.fsync(fd)
            os.replace(self._tmp_path, self.path)
            fsync_dir(self.path.parent)
        except BaseException:
            os.close(fd)
            raise
        old, self._fd = self._fd, fd
        os.close(old)
        self._base_seq = base_seq
        self._written = self._durable = (last_seq, _HEADER.size + len(tail))

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._write_lock, self._sync_lock:
            if self._fd is not None:
                os.close(self._fd)
                os.close(self._lock_fd)
                self._fd = None

    def __enter__(self) -> "WriteAheadLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- payload helpers: catalog writes ------------------------------------------------------------

_UPSERT_MAGIC, _DELETE_MAGIC = b"UPS1", b"DEL1"
_UPSERT_HEAD = struct.Struct("<4sII")     # magic, product count, vector dimension
_COUNT = struct.Struct("<4sI")            # magic, id count
_LEN = struct.Struct("<I")


def encode_upsert(products: Sequence[index_pb2.Product], vectors: np.ndarray) -> bytes:
    """One batch of upserts: the products (serialized protos) and their vectors (float32, one row
    each, in the same order)."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(products):
        raise ValueError(f"vectors must have one row per product: {len(products)} products, "
                         f"vectors of shape {vectors.shape}")
    parts = [_UPSERT_HEAD.pack(_UPSERT_MAGIC, len(products), vectors.shape[1])]
    for product in products:
        blob = product.SerializeToString()
        parts += [_LEN.pack(len(blob)), blob]
    parts.append(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
    return b"".join(parts)


def decode_upsert(payload: bytes) -> tuple[list[index_pb2.Product], np.ndarray]:
    """The (products, vectors) that `encode_upsert` stored; vectors is float32 (n, dim)."""
    view = memoryview(payload)
    if len(view) < _UPSERT_HEAD.size:
        raise WalFormatError("upsert payload shorter than its header")
    magic, count, dim = _UPSERT_HEAD.unpack_from(view)
    if magic != _UPSERT_MAGIC:
        raise WalFormatError(f"not an upsert payload (magic {bytes(magic)!r})")
    offset, products = _UPSERT_HEAD.size, []
    for _ in range(count):
        blob, offset = _take_blob(view, offset, "upsert")
        product = index_pb2.Product()
        product.ParseFromString(blob)
        products.append(product)
    expected = count * dim * 4
    if len(view) - offset != expected:
        raise WalFormatError(f"upsert payload holds {len(view) - offset} vector bytes, expected "
                             f"{expected} ({count} x {dim} float32)")
    vectors = np.frombuffer(view[offset:], dtype="<f4").reshape(count, dim).astype(np.float32)
    return products, vectors


def encode_delete(product_ids: Sequence[str]) -> bytes:
    """One batch of deletes, by product id."""
    parts = [_COUNT.pack(_DELETE_MAGIC, len(product_ids))]
    for product_id in product_ids:
        blob = product_id.encode("utf-8")
        parts += [_LEN.pack(len(blob)), blob]
    return b"".join(parts)


def decode_delete(payload: bytes) -> list[str]:
    """The product ids that `encode_delete` stored."""
    view = memoryview(payload)
    if len(view) < _COUNT.size:
        raise WalFormatError("delete payload shorter than its header")
    magic, count = _COUNT.unpack_from(view)
    if magic != _DELETE_MAGIC:
        raise WalFormatError(f"not a delete payload (magic {bytes(magic)!r})")
    offset, ids = _COUNT.size, []
    for _ in range(count):
        blob, offset = _take_blob(view, offset, "delete")
        ids.append(bytes(blob).decode("utf-8"))
    if offset != len(view):
        raise WalFormatError(f"delete payload has {len(view) - offset} trailing bytes")
    return ids


def _take_blob(view: memoryview, offset: int, what: str) -> tuple[bytes, int]:
    if offset + _LEN.size > len(view):
        raise WalFormatError(f"{what} payload cut short at byte {offset}")
    (length,) = _LEN.unpack_from(view, offset)
    start, end = offset + _LEN.size, offset + _LEN.size + length
    if end > len(view):
        raise WalFormatError(f"{what} payload cut short at byte {offset}")
    return bytes(view[start:end]), end
