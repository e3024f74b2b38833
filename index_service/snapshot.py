"""The served state: ONE immutable Snapshot, referenced by ServedState and swapped atomically.

Readers take `state.snapshot` once per call and use only that object, so a call never sees half
of a change and never waits for a writer. A writer (live updates, compaction) builds a new
Snapshot - `with_upserts` / `with_deletes` below: new catalog arrays, the vector index with the
new rows in an exact layer on top (vectors/layered.py), the lexical model with the new rows added,
a `live` mask, a higher `sequence` - and publishes it with `state.swap(new)`, holding
`state.write_lock` so that writers apply one after another:

    with state.write_lock:
        seq = wal.append("upsert", encode_upsert(products, vectors))      # durable first
        state.swap(state.snapshot.with_upserts(product_dicts, vectors, seq))

FAISS indexes inside a published snapshot are never mutated (FAISS is not safe for concurrent
writes and reads): `VectorIndex.with_added` leaves the built index as it is and puts the new rows
in a small array (folded into a copy of the index past `MAX_LAYER_ROWS`). Deleted and replaced
rows stay in the arrays, masked by `live`, until compaction writes fresh artifacts of `live_rows()`.

Rows are stable within one build (deletes mask, upserts append), so a ListProducts page token is
(build id, row). Compaction renumbers rows: it records a RowMap from the old build's rows to the
new build's, and the new build holds the maps of the last MAX_ROW_MAPS compactions (row_maps.py:
saved in its directory, so that they outlive a restart) to carry a token of an earlier build over
(`row_from`).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from servekit.errors import Unavailable

from . import artifacts
from . import vectors as vector_backends
from .catalog import Catalog
from .catalog_updates import concat, products_catalog
from .columns import load_mapped
from .lexical import LexicalIndex
from .row_maps import RowMaps
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
    # How rows of the builds this one was compacted from map to its rows (page tokens).
    row_maps: RowMaps = RowMaps()

    @classmethod
    def load(cls, build_dir: Path, manifest: dict, search_params: dict) -> "Snapshot":
        """The snapshot of one build directory (embeddings and catalog memory-mapped). Its
        sequence is the manifest's `wal_sequence`: the last logged write the build holds."""
        embeddings = load_mapped(build_dir / artifacts.EMBEDDINGS_FILE)
        params = {**manifest.get("index_params", {}), **search_params}
        index = vector_backends.load(manifest["index_type"], build_dir / artifacts.INDEX_FILE,
                                     embeddings, params)
        return cls(catalog=Catalog.load(build_dir / artifacts.CATALOG_DIR), vectors=index,
                   lexical=LexicalIndex.load(build_dir / artifacts.LEXICAL_FILE), manifest=manifest,
                   sequence=int(manifest.get("wal_sequence", 0)),
                   row_maps=RowMaps.load(build_dir / artifacts.ROW_MAP_FILE))

    @property
    def build_id(self) -> str:
        return str(self.manifest.get("build_id", ""))

    def row_from(self, build_id: str, row: int) -> int | None:
        """Row `row` of build `build_id` (a page token's) as a row of this snapshot's build: the
        same row or, through the row maps, the row it became (a deleted row: the next live
        one's). None when this snapshot has no map from that build."""
        return row if build_id == self.build_id else self.row_maps.row(build_id, row)

    @property
    def product_count(self) -> int:
        return len(self.catalog) if self.live is None else int(self.live.sum())

    def is_live(self, row: int) -> bool:
        return self.live is None or bool(self.live[row])

    def row_of(self, product_id: str) -> int | None:
        row = self.catalog.row_of(product_id)
        return row if row is not None and self.is_live(row) else None

    # --- writes: each returns a NEW snapshot; this one stays valid for calls in flight --------
    def with_upserts(self, products: list[dict], vectors: np.ndarray, sequence: int) -> "Snapshot":
        """Add or replace products (fields as in recsys.v1.Product, validated by the caller) with
        their normalized vectors. A replaced product's old row is masked out and the new one
        appended; within a batch the last product with an id wins. The new rows are added to the
        lexical model with its vocabulary and idf unchanged (no refit: the cost is the batch, not
        the catalog); compaction refits it on the compacted catalog."""
        last = {str(p["id"]): i for i, p in enumerate(products)}
        keep = sorted(last.values())
        products = [products[i] for i in keep]
        vectors = np.asarray(vectors, dtype=np.float32)[keep]
        live = self._live_copy()
        for p in products:
            row = self.catalog.row_of(str(p["id"]))
            if row is not None:
                live[row] = False
        added = products_catalog(products, self.catalog.median_price)
        catalog = concat(self.catalog, added)
        return replace(self, catalog=catalog, vectors=self.vectors.with_added(vectors),
                       lexical=self.lexical.with_rows(added.search_texts()), live=np.concatenate([live, np.ones(len(products), bool)]),
                       sequence=sequence)

    def with_deletes(self, product_ids: list[str], sequence: int) -> tuple["Snapshot", list[str]]:
        """(new snapshot without those products, the ids that were not in the catalog)."""
        live, not_found = self._live_copy(), []
        for product_id in product_ids:
            row = self.row_of(product_id)
            if row is None:
                not_found.append(product_id)
            else:
                live[row] = False
        return replace(self, live=live, sequence=sequence), not_found

    def live_rows(self) -> np.ndarray:
        """Rows served, in catalog order (for compaction: catalog_updates.select + vectors[rows])."""
        return np.arange(len(self.catalog)) if self.live is None else np.flatnonzero(self.live)

    def _live_copy(self) -> np.ndarray:
        return np.ones(len(self.catalog), dtype=bool) if self.live is None else self.live.copy()


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

    def swap(self, new: Snapshot) -> Snapshot | None:
        """Publish `new`; returns the previous snapshot. Attribute assignment is atomic."""
        old, self._snapshot = self._snapshot, new
        return old
