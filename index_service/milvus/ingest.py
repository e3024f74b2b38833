"""The first fill of an empty collection: the collection created (its indexes chosen by the server's
version), then the catalog's rows (read and embedded, or imported, by catalog_source.py, as for
the FAISS store's build) written in batches. Upserts are idempotent, so a fill that died half-way
is simply done again by the next replica. Every batch is written only while this replica's claim
on the fill holds (build_info.Lease): a filler taken over writes nothing more, and gives up its
embedding within a second of noticing (no batch sent after).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pymilvus import MilvusClient
from tqdm import tqdm

from ..catalog import Catalog
from ..catalog_source import catalog_vectors, read_catalog_file
from ..config import IndexConfig
from ..embedder_client import EmbedderClient
from ..startup_plan import StartupError
from . import schema
from .build_info import Lease
from .errors import MilvusCalls

log = logging.getLogger("index_service.milvus")
WRITE_BATCH = 500


def _version(version: str) -> tuple[int, int]:
    digits = [int(part) for part in "".join(c if c in "0123456789" else " " for c in version).split()[:2]]
    return (digits[0], digits[1]) if len(digits) == 2 else (0, 0)


def has_bm25(version: str) -> bool:
    """Milvus >= 2.5 and milvus-lite >= 3 have BM25 full-text search; 2.3/2.4 do not."""
    return _version(version) >= ((3, 0) if version.startswith("milvus_lite") else (2, 5))


def has_inverted_index(version: str) -> bool:
    """Milvus >= 2.4 and milvus-lite index scalars with INVERTED (lite with nothing else)."""
    return version.startswith("milvus_lite") or _version(version) >= (2, 4)


def create_collection(client: MilvusClient, config: IndexConfig, dimension: int,
                      version: str) -> None:
    """The collection with this replica's index settings, unless it exists."""
    collection, bm25 = config.milvus_collection, has_bm25(version)
    if client.has_collection(collection, timeout=config.milvus_timeout_s):
        return
    client.create_collection(
        collection, schema=schema.collection_schema(dimension, bm25=bm25),
        index_params=schema.index_params(
            client, config.milvus_index_type,
            {"m": config.hnsw_m, "ef_construction": config.hnsw_ef_construction}, bm25=bm25,
            inverted=has_inverted_index(version)),
        consistency_level=config.milvus_consistency, timeout=max(config.milvus_timeout_s, 60.0))


def fill_catalog(client, calls: MilvusCalls, config: IndexConfig, embedder: EmbedderClient,
                 lease: Lease, *, bm25: bool, runtime: tuple[str, str], progress: bool) -> dict:
    """Read, embed and write the catalog under `lease`; the build record to mark it ready with."""
    catalog, report = read_catalog_file(config, lease.record["columns"])
    vectors, source = catalog_vectors(config, embedder, catalog, report,
                                      lease.record["dimension"], progress, check=lease.check)
    write_catalog(client, calls, config.milvus_collection, catalog, vectors, bm25=bm25,
                  progress=progress, heartbeat=lease.beat)
    return {**lease.record, "status": "ready", "heartbeat": time.time(), "written": len(catalog),
            "median_price": catalog.median_price, "embeddings_source": source,
            "catalog_format": report.catalog_format, "csv_delimiter": report.csv_delimiter,
            "embedder_backend": runtime[0], "embedder_precision": runtime[1],
            "index_type": config.milvus_index_type,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "catalog_path": str(Path(config.catalog).resolve())}


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
    """Upsert every product in batches, calling `heartbeat(products written so far)` before each
    batch (it raises StartupError when this replica may no longer write)."""
    bar = tqdm(total=len(catalog), unit="product", desc="writing to Milvus", disable=not progress,
               mininterval=1.0)
    try:
        for start in range(0, len(catalog), WRITE_BATCH):
            end = min(start + WRITE_BATCH, len(catalog))
            rows = rows_of(catalog, vectors, bm25, start, end)
            with calls.failures("write the catalog"):
                heartbeat(start)
                client.upsert(collection, rows, timeout=max(calls.timeout_s, 60.0))
            bar.update(end - start)
    finally:
        bar.close()
    with calls.failures("flush the catalog"):
        started = time.monotonic()
        client.flush(collection, timeout=max(calls.timeout_s, 120.0))
        log.info("flushed %d products into %s in %.1f s", len(catalog), collection,
                 time.monotonic() - started)
