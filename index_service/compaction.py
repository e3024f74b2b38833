"""Compaction: fold the write-ahead log into fresh artifacts, in a background thread.

Live writes land in the log and in the served snapshot, whose arrays keep deleted and replaced
rows (masked) and whose lexical model keeps the vocabulary and idf of its last fit. Compaction,
when compaction_schedule says (every N writes, N bytes of log, or once the oldest pending write
is S seconds old) and at clean shutdown:

1. takes the served snapshot, at sequence N (it holds exactly the logged writes <= N);
2. writes a complete build of its live rows - catalog, embeddings, a freshly built vector index,
   a lexical model refitted on the compacted catalog - with `wal_sequence: N` in the manifest,
   atomically (artifacts.write_build: temporary directory, fsync, rename, CURRENT replaced);
3. checkpoints the log at N (records <= N dropped, atomically);
4. serves the new build: loaded from disk, the writes logged after N (while it was built) applied
   on top under the write lock, swapped in.

Step 2 also writes how the old build's rows map to the new build's (row_maps.RowMap, from the
snapshot of step 1; step 4's replay appends the later writes in the order the old build had
them), with the maps of the compactions before it (row_maps.RowMaps): a ListProducts page token
names a build and a row of it, and continues where it left off across compactions and restarts.

A crash between any two steps loses nothing and applies nothing twice: on start the artifacts'
`wal_sequence` says which records they hold, and replay applies only later ones (by seq). The
work runs off the request path: searches keep reading the previous snapshot and never wait on a
lock; writes wait only for step 4's short replay (and step 3's copy of the log's tail).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

from . import artifacts, vectors
from .catalog_updates import select
from .compaction_schedule import CompactionSchedule
from .lexical import LexicalIndex
from .snapshot import ServedState, Snapshot
from .wal import WriteAheadLog

log = logging.getLogger(__name__)
RETRY_AFTER_FAILURE_S = 30.0

COMPACTIONS = Counter("index_compactions_total", "Compactions of the write-ahead log, by outcome",
                      ["outcome"])
COMPACTION_SECONDS = Histogram("index_compaction_seconds", "Time one compaction took",
                               buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))
WAL_PENDING = Gauge("index_wal_pending_records", "Logged writes not yet compacted into artifacts")


def write_compacted(data_dir: Path, snap: Snapshot) -> tuple[Path, dict]:
    """Write the live rows of `snap` as a new build (made CURRENT); (build directory, manifest)."""
    started = time.monotonic()
    rows = snap.live_rows()
    catalog = select(snap.catalog, rows)
    embeddings = snap.vectors.take(rows)
    kind, params = snap.manifest["index_type"], snap.manifest.get("index_params", {})
    index = vectors.create(kind, snap.vectors.dimension, params).build(embeddings)
    lexical = LexicalIndex().fit(catalog.search_texts())
    manifest = {key: value for key, value in snap.manifest.items() if key != "build_id"}
    manifest.update(product_count=len(catalog), wal_sequence=snap.sequence,
                    lexical_vocabulary_size=lexical.vocabulary_size,
                    built_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    build_seconds=round(time.monotonic() - started, 3))
    report = (f"recsys index compaction\nlive writes through seq {snap.sequence} folded in\n"
              f"products: {len(catalog)} (of {len(snap.catalog)} rows before)\n"
              f"catalog: {manifest.get('catalog_path')}\nmodel: {manifest.get('model_name')}\n"
              f"lexical vocabulary: {lexical.vocabulary_size} terms (refitted)\n")

    row_maps = snap.row_maps.then(snap) if snap.build_id else None
    return artifacts.write_served_build(data_dir, manifest, index=index, embeddings=embeddings,
                                        catalog=catalog, lexical=lexical, report=report,
                                        row_maps=row_maps)


class Compactor:
    """Runs compaction in a daemon thread when its schedule says it is due (checked by `notify()`
    after each write, and by a timer for compaction by time); `stop()` compacts once more (clean
    shutdown) so that the next start replays nothing."""

    def __init__(self, state: ServedState, wal: WriteAheadLog, data_dir: Path, *,
                 replay: Callable[[Snapshot], Snapshot], search_params: dict,
                 every_writes: int, every_bytes: int, after_s: float = 0.0):
        self.state, self.wal, self.data_dir = state, wal, Path(data_dir)
        self.replay, self.search_params = replay, search_params
        self.schedule = CompactionSchedule(every_writes=every_writes, every_bytes=every_bytes,
                                           after_s=after_s)
        self.compactions = 0
        self.compacted = threading.Event()  # set after each compaction (tests and tools wait on it)
        self._due = threading.Event()
        self._stopping = threading.Event()
        self._one_at_a_time = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="compaction", daemon=True)
        self._thread.start()
        self.notify()

    def due(self) -> bool:
        return self.schedule.due(self.wal.pending_records, self.wal.size_bytes)

    def notify(self) -> None:
        """Called after each acknowledged write (and at start, for the writes replayed): wakes the
        thread when compaction is due, or to start the timer of compaction by time."""
        pending = self.wal.pending_records
        WAL_PENDING.set(pending)
        if self.schedule.written(pending) or self.due():
            self._due.set()

    def _run(self) -> None:
        while True:
            self._due.wait(self.schedule.seconds_until_due(self.wal.pending_records))
            if self._stopping.is_set():
                return
            self._due.clear()
            if not self.due():  # woken to start the timer, or by a timer that is now moot
                continue
            try:
                self.compact()
            except Exception:  # noqa: BLE001 - keep serving; the log still holds every write
                COMPACTIONS.labels("failed").inc()
                log.exception("compaction failed; the log keeps every write, retrying in %.0f s",
                              RETRY_AFTER_FAILURE_S)
                if self._stopping.wait(RETRY_AFTER_FAILURE_S):
                    return
                self._due.set()

    def compact(self) -> int | None:
        """Compact now; returns the sequence folded into the new build (None: nothing to do)."""
        with self._one_at_a_time:
            snap = self.state.snapshot
            seq = snap.sequence
            if seq == int(snap.manifest.get("wal_sequence", 0)):  # served as built: nothing new
                if self.wal.base_sequence < seq:      # a crash came before its checkpoint
                    self.wal.checkpoint(seq)
                with self.state.write_lock:
                    self.schedule.compacted(0.0, self.wal.pending_records)
                return None
            started = time.monotonic()
            build_dir, manifest = write_compacted(self.data_dir, snap)
            # A crash here: the artifacts hold seq, the log still holds <= seq; replay skips them.
            self.wal.checkpoint(seq)
            fresh = Snapshot.load(build_dir, manifest, self.search_params)
            with self.state.write_lock:
                fresh = self.replay(fresh)            # writes logged while the build was written
                self.state.swap(fresh)
                self.schedule.compacted(time.monotonic() - started, self.wal.pending_records)
            self.compactions += 1
            self.compacted.set()
            COMPACTIONS.labels("ok").inc()
            COMPACTION_SECONDS.observe(time.monotonic() - started)
            WAL_PENDING.set(self.wal.pending_records)
            log.info("compacted %d products through seq %d into %s in %.2f s (%d later writes "
                     "re-applied)", manifest["product_count"], seq, build_dir.name,
                     time.monotonic() - started, fresh.sequence - seq)
            return seq

    def stop(self, *, final: bool = True) -> None:
        """Stop the thread (waiting for a compaction in progress); then compact once more."""
        self._stopping.set()
        self._due.set()
        if self._thread is not None:
            self._thread.join()
        if final:
            try:
                self.compact()
            except Exception:  # noqa: BLE001 - the log still holds every write: nothing is lost
                log.exception("compaction at shutdown failed; the next start replays the log")
