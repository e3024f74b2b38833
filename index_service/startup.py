"""At start: open the write-ahead log, load the artifacts in --data-dir or (re)build them, replay
the logged writes, and return the FAISS store to serve (`open_store`).

What to do is decided by startup_plan.plan (pure: LOAD, REINDEX, REEMBED or BUILD, from the facts
gathered here); the functions below carry each plan out. Then every logged write after the
build's `wal_sequence` is replayed (writes.CatalogWriter.replay, re-embedding the upserts when the
plan says the model changed), and compaction (compaction.Compactor) starts with
`FaissStore.start()`.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np


from . import artifacts, vectors
from .build import write_artifacts
from .catalog import Catalog
from .catalog_files import identity as catalog_identity
from .catalog_files import delimiter_option
from .catalog_reader import CatalogError, LoadReport
from .catalog_source import (catalog_settings, embedded_vectors, embedder_model,
                             imported_vectors, read_catalog_file)
from .compaction import Compactor
from .config import IndexConfig
from .embedder_client import EmbedderClient
from .faiss_store import FaissStore
from .snapshot import ServedState, Snapshot
from .startup_plan import BUILD, LOAD, REEMBED, REINDEX, Facts, Plan, StartupError, plan
from .wal import WriteAheadLog
from .writes import CatalogWriter

WAL_FILE = "catalog.wal"

log = logging.getLogger(__name__)


def open_store(config: IndexConfig, client: EmbedderClient, *, progress: bool = True) -> FaissStore:
    """Open the log (one process per data dir), load or build the artifacts, replay the log, and
    return the FAISS store serving them. Raises StartupError, WalError, ValueError or OSError
    with a one-line message."""
    data_dir = Path(config.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    wal = WriteAheadLog(data_dir / WAL_FILE)
    try:
        snapshot, start_plan = prepare(config, client, progress=progress,
                                       wal_base_seq=wal.base_sequence,
                                       wal_last_seq=wal.last_sequence)
        state = ServedState()
        writer = CatalogWriter(state, client, wal)
        state.swap(with_log_replayed(snapshot, wal, writer,  # before anything is served
                                     reembed=start_plan.reembed_logged_upserts))
        compactor = Compactor(state, wal, data_dir, replay=writer.replay,
                              search_params=config.index_params,
                              every_writes=config.compact_every_writes,
                              every_bytes=config.compact_every_bytes,
                              after_s=config.compact_after_s)
        writer.on_write = compactor.notify
    except BaseException:
        wal.close()
        raise
    return FaissStore(state, writer, wal, compactor)


def with_log_replayed(snapshot: Snapshot, wal: WriteAheadLog, writer: CatalogWriter, *,
                      reembed: bool = False) -> Snapshot:
    """`snapshot` with every acknowledged write the log holds after it applied (`reembed`: the
    upserts with vectors of the embedder's model, not the logged ones). A log behind the
    artifacts (deleted by hand) numbers new writes after theirs (else a restart would skip them
    as already compacted); one with records behind them is refused."""
    if wal.last_sequence < snapshot.sequence:
        _log_behind_artifacts(wal, snapshot.sequence)
    return writer.replay(snapshot, reembed=reembed)


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
                      attribute_columns=list(catalog.attributes),
                      catalog_format=manifest.get("catalog_format", "csv"),
                      csv_delimiter=manifest.get("csv_delimiter", ","),
                      delimiter_source=manifest.get("csv_delimiter_source", ""),
                      position_unit="row" if manifest.get("catalog_format") == "parquet" else "line")


def _facts(config: IndexConfig, client: EmbedderClient, wal_base_seq: int,
           wal_last_seq: int) -> tuple[Facts, Path | None]:
    """What the plan is decided on (the embedder is waited for here), and the served build."""
    csv_path, mapping = catalog_settings(config)
    try:  # format and delimiter (cheap: the first lines of a CSV file) belong to the build
        catalog_format, delimiter = catalog_identity(csv_path, delimiter_option(config.csv_delimiter))
    except CatalogError as exc:
        raise StartupError(str(exc)) from None
    catalog_sha = artifacts.sha256_file(csv_path)
    imported_sha = artifacts.sha256_file(Path(config.embeddings)) if config.embeddings else None
    info = embedder_model(config, client)
    current = artifacts.current_build(Path(config.data_dir))
    facts = Facts(
        catalog_sha256=catalog_sha, columns=mapping, model=(info.model_name, info.dimension),
        embedder_runtime=(info.backend, info.precision),
        index_type=config.index_type, index_params=config.index_params,
        build_param_names=vectors.BACKENDS[config.index_type].build_params,
        manifest=current[1] if current else None,
        embeddings_sha256=imported_sha,
        on_model_change=config.on_model_change, on_catalog_change=config.on_catalog_change,
        wal_base_seq=wal_base_seq,
        wal_last_seq=wal_last_seq, data_dir=config.data_dir, embedder=client.display,
        catalog_format=catalog_format, csv_delimiter=delimiter)
    return facts, current[0] if current else None


def prepare(config: IndexConfig, client: EmbedderClient, *, progress: bool = True,
            wal_base_seq: int = 0, wal_last_seq: int = 0) -> tuple[Snapshot, Plan]:
    """The snapshot of the artifacts to serve, before the log is replayed, and the plan that made
    it. `wal_base_seq`: the log's checkpoint (a build from the CSV holds no logged write after it)."""
    started = time.monotonic()
    facts, build_dir = _facts(config, client, wal_base_seq, wal_last_seq)
    start_plan = plan(facts)
    for note in start_plan.notes:
        log.warning("%s", note)
    if start_plan.action == LOAD:
        log.info("loading artifacts from %s (catalog and model unchanged; they hold the logged "
                 "writes through seq %d)", build_dir, start_plan.wal_sequence)
        return Snapshot.load(build_dir, facts.manifest, config.index_params), start_plan
    if start_plan.action in (REINDEX, REEMBED):
        catalog = Catalog.load(build_dir / artifacts.CATALOG_DIR)
        report = _stored_report(facts.manifest, Path(config.catalog), catalog)
    else:
        catalog, report = read_catalog_file(config, facts.columns)
    embeddings, source = _vectors(start_plan, config, client, facts, catalog, report, build_dir,
                                  progress)
    manifest = _base_manifest(config, facts, start_plan, source)
    new_dir = write_artifacts(Path(config.data_dir), catalog=catalog, report=report,
                              embeddings=embeddings, index_type=config.index_type,
                              index_params=config.index_params, base_manifest=manifest,
                              started=started)
    del embeddings, catalog  # served from the files just written (memory-mapped where possible)
    manifest = artifacts.current_build(Path(config.data_dir))[1]
    log.info("built %d products into %s in %.1f s", manifest["product_count"], new_dir,
             manifest["build_seconds"])
    return Snapshot.load(new_dir, manifest, config.index_params), start_plan


def _vectors(start_plan: Plan, config: IndexConfig, client: EmbedderClient, facts: Facts,
             catalog: Catalog, report: LoadReport, build_dir: Path | None,
             progress: bool) -> tuple[np.ndarray, tuple[str | None, str]]:
    """The build's vectors and their source: (embeddings_sha256, embeddings_source)."""
    dimension = facts.model[1]
    if start_plan.action == REINDEX:
        log.info("index type or parameters changed: re-indexing the stored embeddings")
        return (np.load(build_dir / artifacts.EMBEDDINGS_FILE),
                (facts.manifest.get("embeddings_sha256"), facts.manifest.get("embeddings_source")))
    if start_plan.import_embeddings:
        return (imported_vectors(config, catalog, report, dimension),
                (facts.embeddings_sha256, f"imported from {config.embeddings}"))
    return embedded_vectors(config, client, catalog, dimension, progress), (None, "embedder")


def _base_manifest(config: IndexConfig, facts: Facts, start_plan: Plan,
                   source: tuple[str | None, str]) -> dict:
    return {"model_name": facts.model[0], "dimension": facts.model[1],
            "embedder_backend": facts.embedder_runtime[0],
            "embedder_precision": facts.embedder_runtime[1],
            "catalog_sha256": facts.catalog_sha256,
            "catalog_path": str(Path(config.catalog).resolve()), "columns": facts.columns,
            "embeddings_sha256": source[0], "embeddings_source": source[1],
            "wal_sequence": start_plan.wal_sequence,
            # The log position the catalog was read at: writes past it in a compacted build are
            # live writes, which a rebuild from a changed file would drop (startup_plan.py).
            "catalog_wal_sequence": (start_plan.wal_sequence if start_plan.action == BUILD else
                                     facts.manifest.get("catalog_wal_sequence", 0))}
