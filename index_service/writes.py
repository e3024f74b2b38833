"""The FAISS store's writes: log durably (WAL), then publish a snapshot.

product_writes.py validates and embeds a batch (all or nothing: nothing reaches this module when
a product is bad or the embedder is down); here it is appended to the write-ahead log (fsynced:
the write is acknowledged only once on disk), then applied to a NEW snapshot that is swapped in
(Snapshot.with_upserts / with_deletes). Writers run one at a time (state.write_lock); searches
keep reading the previous snapshot meanwhile.

On start, `replay` applies every logged write after the artifacts' sequence (their manifest's
`wal_sequence`), so a restart (clean or after SIGKILL) serves every acknowledged write, each once.
Compaction (compaction.py) folds the log into fresh artifacts now and then and checkpoints it.
When the catalog CSV changed, the artifacts are rebuilt from it and the writes logged after the
last compaction are re-applied on top (their stored vectors; re-embedded if the model changed).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from servekit.errors import Unavailable

from .embedder_client import EmbedderClient
from .product_writes import check_attribute_names, product_dict, product_texts
from .snapshot import ServedState, Snapshot
from .wal import WalError, WriteAheadLog
from .wal_codec import decode_delete, decode_upsert, encode_delete, encode_upsert

log = logging.getLogger(__name__)
REEMBED_BATCH = 64


class CatalogWriter:
    def __init__(self, state: ServedState, embedder: EmbedderClient, log_: WriteAheadLog, *,
                 on_write: Callable[[], None] | None = None):
        self.state, self.embedder, self.wal = state, embedder, log_  # embedder: re-embedding
        self.on_write = on_write  # called after each applied write (the compaction trigger)

    def upsert(self, products, vectors: np.ndarray) -> tuple[int, int, int]:
        """Validated, cleaned products (product_writes.clean_products) and their vectors ->
        (products written, products in the catalog after, WAL sequence)."""
        with self.state.write_lock:  # checked here, so that concurrent writes cannot overshoot it
            check_attribute_names(self.state.snapshot.catalog.attributes.keys(), products)
            seq = self._append("upsert", encode_upsert(products, vectors))
            new = self.state.snapshot.with_upserts([product_dict(p) for p in products], vectors,
                                                   seq)
            self.state.swap(new)
        self._written()
        return len({p.id for p in products}), new.product_count, seq

    def delete(self, product_ids) -> tuple[int, list[str], int, int]:
        """(deleted, ids not in the catalog, products after, WAL sequence)."""
        ids = [str(i) for i in product_ids]
        with self.state.write_lock:
            seq = self._append("delete", encode_delete(ids))
            new, not_found = self.state.snapshot.with_deletes(ids, seq)
            self.state.swap(new)
        self._written()
        return len(set(ids) - set(not_found)), not_found, new.product_count, seq

    def _written(self) -> None:
        if self.on_write is not None:
            self.on_write()

    def _append(self, op: str, payload: bytes) -> int:
        try:
            return self.wal.append(op, payload)
        except WalError as exc:
            raise Unavailable(f"write not applied: the write-ahead log cannot take writes ({exc}); "
                              f"restart the index service") from None

    def replay(self, snap: Snapshot, *, reembed: bool = False) -> Snapshot:
        """`snap` with every logged write after its sequence applied (call before serving it, or
        under write_lock). Each record applies once: records <= snap.sequence are skipped.
        `reembed`: the logged vectors are another model's (start-up after a model change), so
        upserts are embedded again through the embedder."""
        applied = 0
        for seq, op, payload in self.wal.replay(after_seq=snap.sequence):
            if op == "upsert":
                products, vectors = decode_upsert(payload)
                if reembed:
                    vectors = self._reembed(products)
                snap = snap.with_upserts([product_dict(p) for p in products], vectors, seq)
            else:
                snap, _ = snap.with_deletes(decode_delete(payload), seq)
            applied += 1
        if applied:
            log.info("replayed %d logged writes (through seq %d)%s", applied, snap.sequence,
                     ", upserts re-embedded with the new model" if reembed else "")
        return snap

    def _reembed(self, products) -> np.ndarray:
        texts = product_texts(products)
        return np.concatenate([self.embedder.embed(texts[i:i + REEMBED_BATCH], timeout=60.0,
                                                   what="logged products")
                               for i in range(0, len(texts), REEMBED_BATCH)])
