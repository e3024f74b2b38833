"""UpsertProducts / DeleteProducts: validate, embed, log durably (WAL), then publish a snapshot.

A batch is all or nothing: every product is validated first (INVALID_ARGUMENT names the product
and nothing is applied), then embedded through the embedder (UNAVAILABLE: nothing applied), then
appended to the write-ahead log (fsynced: the write is acknowledged only once on disk), then
applied to a NEW snapshot that is swapped in (Snapshot.with_upserts / with_deletes). Writers run
one at a time (state.write_lock); searches keep reading the previous snapshot meanwhile.

On start, `replay` applies every logged write after the artifacts' sequence (their manifest's
`wal_sequence`), so a restart (clean or after SIGKILL) serves every acknowledged write, each once.
Compaction (compaction.py) folds the log into fresh artifacts now and then and checkpoints it.
When the catalog CSV changed, the artifacts are rebuilt from it and the writes logged after the
last compaction are re-applied on top (their stored vectors; re-embedded if the model changed).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np

from client.generated.recsys.v1 import index_pb2
from servekit.errors import FailedPrecondition, InvalidArgument, Unavailable

from .wal import WalError, WriteAheadLog
from .wal_codec import decode_delete, decode_upsert, encode_delete, encode_upsert
from .catalog import search_text
from .catalog_updates import breadcrumb_string
from .embedder_client import EmbedderClient
from .snapshot import ServedState, Snapshot

log = logging.getLogger(__name__)
MAX_ID_CHARS = 1024
# One product's encoded size: keeps a page of 1,000 products (ListProducts, Search with k=1000)
# under the 64 MiB message limit (images and attributes are not bounded by the embedder's limits).
MAX_PRODUCT_BYTES = 64 * 1024
REEMBED_BATCH = 64


def product_dict(p: index_pb2.Product) -> dict:
    """A Product message as the plain fields Snapshot.with_upserts takes."""
    return {"id": p.id.strip(), "title": p.title, "brand": p.brand, "description": p.description,
            "price": p.price if p.HasField("price") else None, "categories": list(p.categories),
            "material": p.material, "color": p.color, "images": list(p.images),
            "attributes": dict(p.attributes)}


def product_texts(products) -> list[str]:
    """The search texts of Product messages (recipe step 3)."""
    return [search_text(p.title, p.brand, breadcrumb_string(list(p.categories)), p.material,
                        p.color, p.description) for p in products]


def _check_batch(n: int, limit: int, what: str) -> None:
    if n == 0:
        raise InvalidArgument(f"{what} is empty: send 1 to {limit}")
    if n > limit:
        raise InvalidArgument(f"{what} holds {n} items; at most {limit} per call")


def validate_products(products, limit: int) -> None:
    _check_batch(len(products), limit, "products")
    for i, p in enumerate(products):
        name = f"products[{i}]" + (f" (id {p.id!r})" if p.id.strip() else "")
        if not p.id.strip():
            raise InvalidArgument(f"{name}: id is empty")
        if len(p.id) > MAX_ID_CHARS:
            raise InvalidArgument(f"{name}: id is longer than {MAX_ID_CHARS} characters")
        if not p.title.strip():
            raise InvalidArgument(f"{name}: title is empty")
        if p.ByteSize() > MAX_PRODUCT_BYTES:
            raise InvalidArgument(f"{name}: {p.ByteSize()} bytes encoded, over {MAX_PRODUCT_BYTES} "
                                  "per product (texts, images and attributes together)")
        if p.HasField("price") and not (math.isfinite(p.price) and p.price >= 0):
            raise InvalidArgument(f"{name}: price must be a finite number >= 0, got {p.price}")


class CatalogWriter:
    def __init__(self, state: ServedState, embedder: EmbedderClient, log_: WriteAheadLog, *,
                 max_batch_products: int, on_write: Callable[[], None] | None = None):
        self.state, self.embedder, self.wal = state, embedder, log_
        self.max_batch_products = max_batch_products
        self.on_write = on_write  # called after each applied write (the compaction trigger)

    def upsert(self, products, timeout: float | None) -> tuple[int, int, int]:
        """(products written, products in the catalog after, WAL sequence)."""
        validate_products(products, self.max_batch_products)
        texts = product_texts(products)
        vectors = self.embedder.embed(texts, timeout=timeout, what="products")
        snap = self.state.snapshot
        if vectors.shape[1] != snap.vectors.dimension:
            # Not the caller's to fix: the embedder serves another model than the index was built
            # with (an operator's change). Nothing is applied.
            raise FailedPrecondition(f"write not applied: the embedder's vectors have dimension "
                                     f"{vectors.shape[1]}, the index {snap.vectors.dimension}; "
                                     "point --embedder at the index's model, or rebuild the index "
                                     "(--on-model-change rebuild)")
        clean = [index_pb2.Product(**{k: v for k, v in product_dict(p).items() if v is not None})
                 for p in products]
        with self.state.write_lock:
            seq = self._append("upsert", encode_upsert(clean, vectors))
            new = self.state.snapshot.with_upserts([product_dict(p) for p in clean], vectors, seq)
            self.state.swap(new)
        self._written()
        return len({p.id for p in clean}), new.product_count, seq

    def delete(self, product_ids) -> tuple[int, list[str], int, int]:
        """(deleted, ids not in the catalog, products after, WAL sequence)."""
        ids = [str(i) for i in product_ids]
        _check_batch(len(ids), self.max_batch_products, "product_ids")
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
