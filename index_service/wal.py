"""A durable write-ahead log for catalog writes: acknowledged only once on disk, replayed on start.

Why an append-only file and not SQLite (WAL mode, synchronous=FULL)? Both are durable. The log is
simpler for this job: records are opaque blobs that are only ever appended and read back in order,
so a table, pages and a query planner buy nothing; one `write` + one `fsync` per batch of
concurrent appends (group commit) is the least disk work a durable write can cost; the format is
twenty lines of `struct`, so what a crash can leave behind (a torn last record) is detected and
repaired here, visibly, instead of inside a library; and checkpointing is one atomic `rename`.

The file format and its recovery after a crash: wal_format.py.

Guarantees
- `append` returns only after its record is written and fsynced: an acknowledged write survives a
  crash of the process or the machine. Concurrent appends share one fsync (group commit).
- A write that raised was not acknowledged; after a failed write the file is cut back to its last
  durable length and the log refuses further appends (`WalError`) until it is reopened, because
  after a failed fsync the kernel may already have dropped the unsynced pages (PostgreSQL's
  "fsyncgate"): retrying could acknowledge data that is not on disk.
- On open, a torn tail (as a crash mid-write leaves) is truncated with a warning and the log
  opens; what cannot come from a crash is refused or kept aside (wal_format.recover).
- `checkpoint(n)` drops records <= n atomically: the records > n are copied to a new file that is
  fsynced and renamed over the old one, then the directory is fsynced. A crash at any moment
  leaves either the old file or the new one, both valid.
- One process at a time: `<path>.lock` is flock()ed while open; a second open fails clearly.

Payloads are opaque bytes (or a JSON-able dict): this module knows nothing of products. Catalog
writes are encoded by wal_codec.py (`encode_upsert(products, vectors)`, `encode_delete(ids)`).
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from .durable_io import fsync_dir
from .wal_format import (HEADER, OP_NAMES, OPS, Scan, WalCorruptError, WalError, decode_payload,
                         encode_payload, header, read_header, records, recover)
from .wal_format import record as encode_record
from .wal_format import write_all as _write_all  # a module global: tests stand in for it

__all__ = ["WriteAheadLog", "WalError", "WalCorruptError", "OPS"]

log = logging.getLogger(__name__)


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
                self._create(self.path, header(0))
            fd = os.open(self.path, os.O_RDWR)
            try:
                scan, self.torn_bytes_dropped = recover(self.path, fd, self._create)
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
        kind, data = encode_payload(payload)
        with self._write_lock:
            self._check_usable()
            seq, end = self._written[0] + 1, self._written[1]
            record = encode_record(seq, OPS[op], kind, data)
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
        scan = Scan(read_header(self.path, data))
        return ((seq, OP_NAMES[op], decode_payload(kind, payload))
                for seq, op, kind, payload in records(data, scan, after_seq))

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
            scan = Scan(self._base_seq)
            keep_from = written_end
            offset = HEADER.size
            for record_seq, _op, _kind, _payload in records(data, scan):
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
            _write_all(fd, header(base_seq) + tail)
            os.fsync(fd)
            os.replace(self._tmp_path, self.path)
            fsync_dir(self.path.parent)
        except BaseException:
            os.close(fd)
            raise
        old, self._fd = self._fd, fd
        os.close(old)
        self._base_seq = base_seq
        self._written = self._durable = (last_seq, HEADER.size + len(tail))

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
