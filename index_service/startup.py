"""At start: open the write-ahead log, load the artifacts in --data-dir or (re)build them, replay
the logged writes, and return the Store to serve (`open_store`).

Decision (in this order):
1. the embedder's model (name, dimension) differs from the artifacts': refuse with a clear message
   (--on-model-change rebuild re-embeds instead: the stored catalog, live updates included, when
   the CSV is unchanged; logged upserts are re-embedded as they are replayed);
2. same catalog file (sha256), column mapping and imported embeddings, same index type and build
   parameters: load, embedding nothing;
3. same data but another index type or build parameters: rebuild the index from the stored
   catalog and embeddings (no embedding; compacted live updates kept);
4. otherwise (the CSV changed, or no artifacts): read the CSV, embed every product (or import
   --embeddings), write a new build. The operator replaced the source of truth: writes compacted
   into the previous artifacts go with them, and the writes logged after the last compaction are
   re-applied on top of the new catalog (with their stored vectors).

Then every logged write after the build's `wal_sequence` is replayed (writes.CatalogWriter.replay),
and compaction (compaction.Compactor) starts with `Store.start()`.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from servekit.errors import ServiceError

from . import artifacts, vectors
from .build import embed_all, import_embeddings, write_artifacts
from .catalog import Catalog
from .catalog_reader import CatalogError, LoadReport, parse_columns_spec, read_catalog
from .compaction import Compactor
from .config import IndexConfig
from .embedder_client import EmbedderClient
from .snapshot import ServedState, Snapshot
from .wal import WriteAheadLog
from .writes import REEMBED_LOGGED_UPSERTS, CatalogWriter

WAL_FILE = "catalog.wal"

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The service cannot serve; the message is one line saying why and what to do."""


@dataclass
class Store:
    """What serving needs from the data directory: the snapshot (logged writes replayed), the
    writer, the log and its compactor. `start()` once serving; `close()` at shutdown."""
    snapshot: Snapshot
    writer: CatalogWriter
    wal: WriteAheadLog
    compactor: Compactor

    def start(self) -> None:
        self.compactor.start()

    def close(self) -> None:
        """Compact what the log holds (the next start replays nothing), then close the log."""
        self.compactor.stop(final=True)
        self.wal.close()


def open_store(config: IndexConfig, client: EmbedderClient, state: ServedState, *,
               progress: bool = True) -> Store:
    """Open the log (one process per data dir), load or build the artifacts, replay the log.
    Raises StartupError, WalError, ValueError or OSError with a one-line message."""
    data_dir = Path(config.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    wal = WriteAheadLog(data_dir / WAL_FILE)
    try:
        snapshot = prepare(config, client, progress=progress, wal_base_seq=wal.base_sequence,
                           wal_last_seq=wal.last_sequence)
        writer = CatalogWriter(state, client, wal, max_batch_products=config.max_batch_products)
        snapshot = with_log_replayed(snapshot, wal, writer)  # before anything is served
        compactor = Compactor(state, wal, data_dir, replay=writer.replay,
                              search_params=config.index_params,
                              every_writes=config.compact_every_writes,
                              every_bytes=config.compact_every_bytes)
        writer.on_write = compactor.notify
    except BaseException:
        wal.close()
        raise
    return Store(snapshot, writer, wal, compactor)


def with_log_replayed(snapshot: Snapshot, wal: WriteAheadLog, writer: CatalogWriter) -> Snapshot:
    """`snapshot` with every acknowledged write the log holds after it applied. A log behind the
    artifacts (deleted by hand) numbers new writes after theirs (else a restart would skip them
    as already compacted); one with records behind them is refused."""
    if wal.last_sequence < snapshot.sequence:
        _log_behind_artifacts(wal, snapshot.sequence)
    return writer.replay(snapshot)


def _log_behind_artifacts(wal: WriteAheadLog, artifacts_seq: int) -> None:
    if wal.pending_records:
        raise StartupError(f"{wal.path} ends at seq {wal.last_sequence} but the artifacts hold the "
                           f"writes through seq {artifacts_seq}: this log belongs to other "
                           "artifacts; move it away (its writes are not served) and start again")
    log.warning("%s is empty and behind the artifacts (deleted?): numbering new writes after seq "
                "%d", wal.path, artifacts_seq)
    wal.start_after(artifacts_seq)


def _stored_report(manifest: dict, csv_path: Path, catalog: Catalog) -> LoadReport:
    """The build report of a rebuild from stored artifacts (the CSV was not read again)."""
    counts = manifest.get("counts", {})
    return LoadReport(path=str(csv_path), rows_read=counts.get("rows_read", 0), products=len(catalog),
                      repeated_ids=counts.get("repeated_ids", 0),
                      skipped_rows=[tuple(r) for r in manifest.get("skipped_rows", [])],
                      prices_missing=counts.get("prices_missing", 0),
                      median_price=catalog.median_price, ids_from=counts.get("ids_from", ""),
                      attribute_columns=list(catalog.attributes))


def _build_params(kind: str, params: dict) -> dict:
    return {k: params.get(k) for k in vectors.BACKENDS[kind].build_params}


def prepare(config: IndexConfig, client: EmbedderClient, *, progress: bool = True,
            wal_base_seq: int = 0, wal_last_seq: int = 0) -> Snapshot:
    """The snapshot of the artifacts to serve, before the log is replayed. `wal_base_seq`: the
    log's checkpoint (a build from the CSV holds no logged write after it)."""
    data_dir, csv_path = Path(config.data_dir), Path(config.catalog)
    if not csv_path.is_file():
        raise StartupError(f"{csv_path}: no such catalog file")
    try:
        mapping = parse_columns_spec(config.columns)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    started = time.monotonic()
    catalog_sha = artifacts.sha256_file(csv_path)
    imported_sha = artifacts.sha256_file(Path(config.embeddings)) if config.embeddings else None
    try:
        client.wait_serving(config.embedder_wait_s)
        model_name, dimension = client.model_info(timeout=config.embedder_wait_s, wait_for_ready=True)
    except ServiceError as exc:
        raise StartupError(f"cannot start: {exc.message} (waited {config.embedder_wait_s:g} s; "
                           f"is the embedder running?)") from None

    current = artifacts.current_build(data_dir)
    model_changed = False
    if current is not None:
        build_dir, manifest = current
        if (manifest.get("model_name"), manifest.get("dimension")) != (model_name, dimension):
            message = (f"the artifacts in {data_dir} were built with model {manifest.get('model_name')!r} "
                       f"(dimension {manifest.get('dimension')}) but the embedder at {client.display} "
                       f"serves {model_name!r} (dimension {dimension})")
            if config.on_model_change == "refuse":
                raise StartupError(f"refusing to serve: {message}; point --embedder at the "
                                   f"artifacts' model, or start with --on-model-change rebuild")
            log.warning("%s: rebuilding (--on-model-change rebuild)", message)
            model_changed = True
    same_data = (current is not None and manifest.get("catalog_sha256") == catalog_sha
                 and manifest.get("columns") == mapping
                 and (imported_sha is None or manifest.get("embeddings_sha256") == imported_sha))
    if same_data and not model_changed and manifest.get("index_type") == config.index_type and \
            _build_params(config.index_type, manifest.get("index_params", {})) == \
            _build_params(config.index_type, config.index_params):
        log.info("loading artifacts from %s (catalog and model unchanged; they hold the logged "
                 "writes through seq %d)", build_dir, manifest.get("wal_sequence", 0))
        return Snapshot.load(build_dir, manifest, config.index_params)

    if same_data:  # the stored catalog: the CSV's products and the compacted live updates
        catalog = Catalog.load(build_dir / "catalog")
        report = _stored_report(manifest, csv_path, catalog)
        wal_sequence = int(manifest.get("wal_sequence", 0))
    else:
        try:
            catalog, report = read_catalog(csv_path, mapping)
        except CatalogError as exc:
            raise StartupError(str(exc)) from None
        if len(catalog) == 0:
            raise StartupError(f"{csv_path}: no products (every row lacks a title, or the file has "
                               "no rows)")
        compacted = int(manifest.get("wal_sequence", 0)) if current is not None else 0
        wal_sequence = max(wal_base_seq, compacted)
        if current is not None or wal_last_seq > wal_sequence:
            log.warning("catalog %s is new or changed since the last build: rebuilding from it; live "
                        "writes compacted into the previous artifacts (through seq %d) are replaced "
                        "by the new file, and the %d writes logged after seq %d are re-applied on "
                        "top of it", csv_path, wal_sequence, max(0, wal_last_seq - wal_sequence),
                        wal_sequence)
    base_manifest = {"model_name": model_name, "dimension": dimension, "catalog_sha256": catalog_sha,
                     "catalog_path": str(csv_path.resolve()), "columns": mapping,
                     "embeddings_sha256": None, "embeddings_source": "embedder",
                     "wal_sequence": wal_sequence}
    if same_data and not model_changed:
        log.info("index type or parameters changed: re-indexing the stored embeddings")
        embeddings = np.load(build_dir / "embeddings.npy")
        base_manifest.update(embeddings_sha256=manifest.get("embeddings_sha256"),
                             embeddings_source=manifest.get("embeddings_source"))
    elif config.embeddings and not same_data:
        try:
            embeddings = import_embeddings(Path(config.embeddings), catalog, report, dimension)
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        base_manifest.update(embeddings_sha256=imported_sha,
                             embeddings_source=f"imported from {config.embeddings}")
    else:
        log.info("embedding %d products through the embedder at %s", len(catalog), client.display)
        try:
            embeddings = embed_all(client, catalog.search_texts(), dimension=dimension,
                                   batch_size=config.build_batch_size,
                                   concurrency=config.build_concurrency,
                                   timeout_s=config.build_timeout_s, progress=progress)
        except ServiceError as exc:
            raise StartupError(f"build failed: {exc.message}") from None
    build_dir = write_artifacts(data_dir, catalog=catalog, report=report, embeddings=embeddings,
                               index_type=config.index_type, index_params=config.index_params,
                               base_manifest=base_manifest, started=started)
    del embeddings, catalog  # served from the files just written (memory-mapped where possible)
    manifest = artifacts.current_build(data_dir)[1]
    log.info("built %d products into %s in %.1f s", manifest["product_count"], build_dir,
             manifest["build_seconds"])
    snapshot = Snapshot.load(build_dir, manifest, config.index_params)
    if model_changed:  # the logged vectors are the old model's
        snapshot = replace(snapshot, extra={REEMBED_LOGGED_UPSERTS: True})
    return snapshot
