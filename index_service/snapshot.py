"""The served state: ONE immutable Snapshot, referenced by ServedState and swapped atomically.

Readers take `state.snapshot` once per call and use only that object, so a call never sees half
of a change and never waits for a writer. A writer (live updates, compaction) builds a new
Snapshot - new catalog arrays / vector index / lexical model, or the old ones plus a `live` mask
and a higher `sequence` - and publishes it with `state.swap(new)`. FAISS indexes inside a
published snapshot are never mutated (FAISS is not safe for concurrent writes and reads).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from servekit.errors import Unavailable

from .catalog import Catalog
from .lexical import LexicalIndex
from .vectors import VectorIndex


@dataclass(frozen=True)
class Snapshot:
    catalog: Catalog
    vectors: VectorIndex
    lexical: LexicalIndex
    manifest: dict
    # Rows still served (None: all). A delete can publish a snapshot with a narrower mask.
    live: np.ndarray | None = None
    # Writes applied since the artifacts were built (the WAL's sequence).
    sequence: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def product_count(self) -> int:
        return len(self.catalog) if self.live is None else int(self.live.sum())

    def is_live(self, row: int) -> bool:
        return self.live is None or bool(self.live[row])

    def row_of(self, product_id: str) -> int | None:
        row = self.catalog.row_of(product_id)
        return row if row is not None and self.is_live(row) else None


class ServedState:
    """Holds the current Snapshot; `swap` publishes a new one (serialised among writers)."""

    def __init__(self):
        self._snapshot: Snapshot | None = None
        self.write_lock = threading.Lock()  # writers take it; readers never do

    @property
    def snapshot(self) -> Snapshot:
        snap = self._snapshot
        if snap is None:
            raise Unavailable("the index is still building: retry when health reports SERVING")
        return snap

    @property
    def ready(self) -> bool:
        return self._snapshot is not None

    def swap(self, new: Snapshot) -> Snapshot | None:
        """Publish `new`; returns the previous snapshot. Attribute assignment is atomic."""
        old, self._snapshot = self._snapshot, new
        return old
