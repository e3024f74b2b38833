"""The first fill of an empty collection: the catalog's rows (read and embedded, or imported, by
catalog_source.py, as for the FAISS store's build) written in batches. Upserts are idempotent,
so a fill that died half-way is simply done again by the next replica.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from ..catalog import Catalog
from ..startup_plan import StartupError
from . import schema
from .errors import MilvusCalls

log = logging.getLogger("index_service.milvus")
WRITE_BATCH = 500


def rows_of(catalog: Catalog, vectors: np.ndarray, bm25: bool, start: int, end: int) -> list[dict]:
    try:
        return [schema.to_row(catalog.product(r), vectors[r],
                              catalog.search_text(r) if bm25 else None) for r in range(start, end)]
    except schema.RowError as exc:
        raise StartupError(f"{catalog_name(catalog)}: {exc}") from None


def catalog_name(catalog: Catalog) -> str:
    return f"the catalog ({len(catalog)} products)"


def write_catalog(client, calls: MilvusCalls, collection: str, catalog: Catalog,
                  vectors: np.ndarray, *, bm25: bool, progress: bool,
                  heartbeat: Callable[[int], None]) -> None:
    """Upsert every product in batches, calling `heartbeat(products written)` between them."""
    bar = tqdm(total=len(catalog), unit="product", desc="writing to Milvus", disable=not progress,
               mininterval=1.0)
    try:
        for start in range(0, len(catalog), WRITE_BATCH):
            end = min(start + WRITE_BATCH, len(catalog))
            rows = rows_of(catalog, vectors, bm25, start, end)
            with calls.failures("write the catalog"):
                client.upsert(collection, rows, timeout=max(calls.timeout_s, 60.0))
            bar.update(end - start)
            heartbeat(end)
    finally:
        bar.close()
    with calls.failures("flush the catalog"):
        started = time.monotonic()
        client.flush(collection, timeout=max(calls.timeout_s, 120.0))
        log.info("flushed %d products into %s in %.1f s", len(catalog), collection,
                 time.monotonic() - started)
