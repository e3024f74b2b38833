"""Build the artifacts of a catalog: embed every product through the embedder, index, save.

Embedding is pipelined: texts sorted by length (less padding in the embedder's batches) go out in
batches of `batch_size`, `concurrency` calls in flight, so the embedder always has work queued
while results are written back in catalog order. A tqdm bar shows rate and ETA on the console.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from servekit.errors import Unavailable

from . import artifacts, vectors
from .catalog import Catalog
from .catalog_files import FORMAT_NAMES, delimiter_name
from .catalog_reader import LoadReport
from .embedder_client import EmbedderClient
from .lexical import LexicalIndex

log = logging.getLogger(__name__)
RETRIES = 3
CHECK_S = 1.0  # embed_all's `check`: how often, at least, while batches are out
PROGRESS_LOG_S = 30.0  # embed_all without a progress bar: a log line this often


class ProgressLog:
    """Progress as a log line every PROGRESS_LOG_S seconds, where no progress bar is shown."""

    def __init__(self, total: int, verb: str):
        self.total, self.verb = total, verb
        self.started = self.last = time.monotonic()

    def tick(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_LOG_S and done < self.total:
            self.last = now
            log.info("%s %d of %d texts (%.0f%%), %.0f texts/s", self.verb, done, self.total,
                     100.0 * done / self.total, done / (now - self.started))


def embed_all(client: EmbedderClient, texts: list[str], *, dimension: int, batch_size: int,
              concurrency: int, timeout_s: float, progress: bool = True,
              check: Callable[[], None] | None = None) -> np.ndarray:
    """(len(texts), dimension) normalized float32 vectors, in the order of `texts`. `check`, if
    given, is called at least every CHECK_S seconds while batches are out, and may raise to give
    the work up: no batch is sent after it, and calls under way are left to end on their own."""
    out = np.zeros((len(texts), dimension), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def run(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        for attempt in range(RETRIES):
            try:
                return rows, client.embed([texts[r] for r in rows], timeout=timeout_s, what="catalog texts")
            except Unavailable:
                if attempt == RETRIES - 1:
                    raise
                time.sleep(1.0 * (attempt + 1))
        raise AssertionError("unreachable")

    bar = tqdm(total=len(texts), unit="text", desc="embedding catalog", disable=not progress,
               mininterval=1.0, smoothing=0.1)
    logged = ProgressLog(len(texts), "embedded")
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="embed")
    pending, queue, finished = set(), iter(batches), False
    try:
        while True:
            while len(pending) < concurrency * 2:
                rows = next(queue, None)
                if rows is None:
                    break
                pending.add(pool.submit(run, rows))
            if not pending:
                break
            done, pending = wait(pending, timeout=CHECK_S if check else None,
                                 return_when=FIRST_COMPLETED)
            if check:
                check()
            for future in done:
                rows, vecs = future.result()
                if vecs.shape[1] != dimension:
                    raise Unavailable(f"the embedder answered vectors of dimension {vecs.shape[1]},"
                                      f" expected {dimension}")
                out[rows] = vecs
                bar.update(len(rows))
            if not progress:
                logged.tick(bar.n)
        finished = True
    finally:
        pool.shutdown(wait=finished, cancel_futures=True)
        bar.close()
    return out


def import_embeddings(path: Path, catalog: Catalog, report: LoadReport, dimension: int) -> np.ndarray:
    """Precomputed vectors aligned with the catalog file's data rows (or with its products)."""
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable .npy file: {exc}") from None
    if data.ndim != 2:
        raise ValueError(f"{path}: expected a 2-d array (rows, dimension), got shape {data.shape}")
    if data.shape[1] != dimension:
        raise ValueError(f"{path}: vectors of dimension {data.shape[1]}, but the embedder's model "
                         f"has dimension {dimension}")
    if len(data) == report.rows_read:
        out = np.asarray(data[np.asarray(catalog.source_rows)], dtype=np.float32)  # a copy
    elif len(data) == len(catalog):
        out = np.array(data, dtype=np.float32)
    else:
        raise ValueError(f"{path}: {len(data)} rows, but the catalog has {report.rows_read} data rows "
                         f"({len(catalog)} products): one vector per row is needed")
    if not np.isfinite(out).all():
        raise ValueError(f"{path}: holds NaN or infinite values")
    return vectors.normalize(out, copy=False)  # one copy of the vectors in memory, not three


def format_text(report: LoadReport) -> str:
    """"CSV, delimiter ';' (detected)", "JSON Lines" or "Parquet"."""
    name = FORMAT_NAMES.get(report.catalog_format, report.catalog_format)
    if report.catalog_format != "csv":
        return name
    source = f" ({report.delimiter_source})" if report.delimiter_source else ""
    return f"{name}, delimiter {delimiter_name(report.csv_delimiter)}{source}"


def report_text(manifest: dict, report: LoadReport) -> str:
    lines = [
        "recsys index build report",
        f"catalog: {report.path}",
        f"catalog sha256: {manifest['catalog_sha256']}",
        f"format: {format_text(report)}",
        f"built at: {manifest['built_at']}",
        f"model: {manifest['model_name']} (dimension {manifest['dimension']})",
        f"index: {manifest['index_type']} {manifest['index_params'] or ''}".rstrip(),
        f"embeddings: {manifest['embeddings_source']}",
        f"ids from: {report.ids_from}",
        f"rows read: {report.rows_read}",
        f"products: {report.products}",
        f"repeated ids (last row wins): {report.repeated_ids}"
        + (f"  e.g. {', '.join(report.repeated_examples)}" if report.repeated_examples else ""),
        f"rows skipped: {len(report.skipped_rows)}",
        *[f"  {report.position_unit} {line}: {reason}" for line, reason in report.skipped_rows],
        f"prices missing (filled with the median {report.median_price:g}): {report.prices_missing}",
        f"attribute columns: {', '.join(report.attribute_columns) or '-'}",
        f"lexical vocabulary: {manifest['lexical_vocabulary_size']} terms",
        f"build time: {manifest['build_seconds']:.1f} s",
    ]
    return "\n".join(lines) + "\n"


def write_artifacts(data_dir: Path, *, catalog: Catalog, report: LoadReport, embeddings: np.ndarray,
                    index_type: str, index_params: dict, base_manifest: dict, started: float,
                    lexical: LexicalIndex | None = None) -> Path:
    """Index the vectors, fit the lexical model, and write one atomic build. Returns its directory."""
    index = vectors.create(index_type, embeddings.shape[1], index_params).build(embeddings)
    if lexical is None:
        lexical = LexicalIndex().fit(catalog.search_texts())
    manifest = {
        **base_manifest,
        "format_version": artifacts.FORMAT_VERSION,
        "product_count": len(catalog),
        "index_type": index_type,
        "index_params": index_params,
        "built_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "build_seconds": round(time.monotonic() - started, 3),
        "lexical_vocabulary_size": lexical.vocabulary_size,
        "counts": report.counts(),
        "catalog_format": report.catalog_format,
        "csv_delimiter": report.csv_delimiter,
        "csv_delimiter_source": report.delimiter_source,
        "skipped_rows": report.skipped_rows,
    }

    build_dir, _ = artifacts.write_served_build(data_dir, manifest, index=index,
                                                embeddings=embeddings, catalog=catalog,
                                                lexical=lexical, report=report_text(manifest, report))
    return build_dir
