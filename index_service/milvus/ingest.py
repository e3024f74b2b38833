"""The first fill of an empty collection: the catalog file read with the app's recipe, every
product embedded through the embedder (the same batching and progress bar as the FAISS store's
build) or its vectors imported (--embeddings), then written in batches. Upserts are idempotent,
so a fill that died half-way is simply done again by the next replica.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from servekit.errors import ServiceError

from ..build import embed_all, import_embeddings
from ..catalog import Catalog
from ..catalog_reader import LoadReport
from ..config import IndexConfig
from ..embedder_client import EmbedderClient
from ..startup_plan import StartupError
from . import schema
from .errors import MilvusCalls

log = logging.getLogger("index_service.milvus")
WRITE_BATCH = 500


def catalog_vectors(config: IndexConfig, embedder: EmbedderClient, catalog: Catalog,
                    report: LoadReport, dimension: int, progress: bool) -> tuple[np.ndarray, str]:
    """(vectors in catalog order, where they came from)."""
    if config.embeddings:
        try:
            vectors = import_embeddings(Path(config.embeddings), catalog, report, dimension)
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        return vectors, f"imported from {config.embeddings}"
    log.info("embedding %d products through the embedder at %s", len(catalog), embedder.display)
    try:
        vectors = embed_all(embedder, catalog.search_texts(), dimension=dimension,
                            batch_size=config.build_batch_size,
                            concurrency=config.build_concurrency,
                            timeout_s=config.build_timeout_s, progress=progress)
    except ServiceError as exc:
        raise StartupError(f"build failed: {exc.message}") from None
    return vectors, "embedder"


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
