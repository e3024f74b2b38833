"""Open the Milvus store: connect (retrying while Milvus is unreachable), find or create the
collection, fill it on the very first start, and return the store to serve.

    store = open_milvus_store(config, embedder)      # blocks until it can serve (NOT_SERVING)

- Milvus unreachable (at start, or lost while filling): one log line per attempt, retried every
  --milvus-retry-s; the service stays NOT_SERVING, never exits.
- A collection whose build record (build_info.py) says "ready" with this replica's catalog
  (sha256, column mapping) and model: served at once, nothing embedded.
- The same, from another catalog or model: refused with one line (as the FAISS store refuses
  another model), since other replicas serve it.
- Empty, or left half-filled by a replica that died: filled here (ingest.py) while other
  replicas wait for the record to say "ready".
"""
from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pymilvus import MilvusClient

from servekit.errors import Unavailable

from .. import artifacts
from ..catalog_source import catalog_settings, catalog_vectors, embedder_model, read_catalog_file
from ..config import IndexConfig
from ..embedder_client import EmbedderClient
from ..startup_plan import StartupError
from . import build_info, schema
from .errors import MilvusCalls
from .ingest import write_catalog
from .store import MilvusStore

log = logging.getLogger("index_service.milvus")
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # its failures reach us as exceptions
STALE_S = 60.0       # a filler silent for this long has died: take over
HEARTBEAT_S = 5.0
WAIT_POLL_S = 2.0


@dataclass(frozen=True)
class Target:
    """What this replica would serve: its catalog file and the embedder's model."""
    catalog_sha256: str
    columns: dict
    model_name: str
    dimension: int
    owner: str
    runtime: tuple[str, str] = ("", "")  # the embedder's (backend, precision): never a mismatch

    def differs(self, info: dict) -> str | None:
        theirs = (info.get("catalog_sha256"), info.get("columns"), info.get("model_name"),
                  info.get("dimension"))
        if theirs == (self.catalog_sha256, self.columns, self.model_name, self.dimension):
            return None
        return (f"catalog sha256 {str(theirs[0])[:12]}... (columns {theirs[1]}), model "
                f"{theirs[2]!r} (dimension {theirs[3]})")


class _LiteServerNoise(logging.Filter):
    """milvus-lite (a local file URI) runs a gRPC server inside this process that logs a traceback
    whenever pymilvus asks it for a timestamp it does not implement (the call then falls back)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Method not implemented" not in record.getMessage()


def open_milvus_store(config: IndexConfig, embedder: EmbedderClient, *,
                      progress: bool = True) -> MilvusStore:
    """The store to serve; StartupError (one line) when this replica must not serve it."""
    if "://" not in config.milvus_uri:  # a milvus-lite file
        logging.getLogger("grpc._server").addFilter(_LiteServerNoise())
    target = _target(config, embedder)
    while True:
        try:
            return _open(config, embedder, target, progress)
        except Unavailable as exc:
            log.warning("%s; retrying in %g s (health NOT_SERVING meanwhile)", exc.message,
                        config.milvus_retry_s)
            time.sleep(config.milvus_retry_s)


def _target(config: IndexConfig, embedder: EmbedderClient) -> Target:
    catalog, columns = catalog_settings(config)
    sha = artifacts.sha256_file(catalog)
    model = embedder_model(config, embedder)
    return Target(sha, columns, model.model_name, model.dimension,
                  f"{socket.gethostname()}:{os.getpid()}", (model.backend, model.precision))


def milvus_token(config: IndexConfig) -> str:
    if not config.milvus_token_file:
        return config.milvus_token
    try:
        return Path(config.milvus_token_file).read_text().strip()
    except OSError as exc:
        raise StartupError(f"cannot read --milvus-token-file {config.milvus_token_file}: "
                           f"{exc.strerror or exc}") from None


def _open(config: IndexConfig, embedder: EmbedderClient, target: Target,
          progress: bool) -> MilvusStore:
    calls = MilvusCalls(config.milvus_uri, config.milvus_timeout_s)
    with calls.failures("accept a connection"):
        client = MilvusClient(uri=config.milvus_uri, token=milvus_token(config),
                              timeout=config.milvus_timeout_s)
        version = client.get_server_version(timeout=config.milvus_timeout_s)
    collection, timeout = config.milvus_collection, config.milvus_timeout_s
    with calls.failures(f"prepare the collection {collection}"):
        build_info.ensure(client, collection, timeout)
        info = _settle(client, calls, config, embedder, target, version, progress)
        fields = _fields(client, collection, target.dimension)
        client.load_collection(collection, timeout=max(timeout, 120.0))
    log.info("Milvus %s at %s: collection %s ready (%s index, BM25 %s)", version,
             config.milvus_uri, collection, config.milvus_index_type,
             "yes" if schema.SPARSE in fields else "no: MODE_LEXICAL/HYBRID answer FAILED_PRECONDITION")
    return MilvusStore(client, calls, collection=collection, info=info,
                       consistency=config.milvus_consistency,
                       index_type=config.milvus_index_type, ef_search=config.hnsw_ef_search,
                       bm25=schema.SPARSE in fields, server_version=version)


def _version(version: str) -> tuple[int, int]:
    digits = [int(part) for part in "".join(c if c in "0123456789" else " " for c in version).split()[:2]]
    return (digits[0], digits[1]) if len(digits) == 2 else (0, 0)


def has_bm25(version: str) -> bool:
    """Milvus >= 2.5 and milvus-lite >= 3 have BM25 full-text search; 2.3/2.4 do not."""
    return _version(version) >= ((3, 0) if version.startswith("milvus_lite") else (2, 5))


def has_inverted_index(version: str) -> bool:
    """Milvus >= 2.4 and milvus-lite index scalars with INVERTED (lite with nothing else)."""
    return version.startswith("milvus_lite") or _version(version) >= (2, 4)


def _fields(client: MilvusClient, collection: str, dimension: int) -> set[str]:
    """The collection's field names; StartupError when it is not one of ours."""
    description = client.describe_collection(collection)
    fields = {f["name"]: f for f in description["fields"]}
    vector = fields.get(schema.VECTOR)
    missing = [name for name in schema.PRODUCT_FIELDS if name not in fields]
    if missing or vector is None or int(vector["params"].get("dim", 0)) != dimension:
        raise StartupError(f"the Milvus collection {collection} is not a recsys catalog of "
                           f"dimension {dimension} (fields: {', '.join(fields)}): choose another "
                           "--milvus-collection")
    return set(fields)


def _settle(client, calls, config, embedder, target, version, progress) -> dict:
    """Wait until the collection holds a ready build of `target`, filling it if nobody does."""
    while True:
        info = build_info.read(client, config.milvus_collection, config.milvus_timeout_s)
        if info and info.get("status") == "ready":
            if (other := target.differs(info)) is not None:
                raise StartupError(_refusal(config, target, other))
            _log_runtime_change(info, target)
            return info
        filler_alive = (info and info.get("owner") != target.owner
                        and time.time() - float(info.get("heartbeat", 0)) < STALE_S)
        if filler_alive:
            log.info("waiting for %s, which is filling %s (%s products written)", info["owner"],
                     config.milvus_collection, info.get("written", 0))
            time.sleep(WAIT_POLL_S)
            continue
        if info and info.get("owner") != target.owner:
            log.warning("%s was left half-filled by %s (silent for over %g s): filling it here",
                        config.milvus_collection, info.get("owner"), STALE_S)
        filled = _fill(client, calls, config, embedder, target, version, progress, info)
        if filled is not None:
            return filled


def _log_runtime_change(info: dict, target: Target) -> None:
    built = (info.get("embedder_backend", ""), info.get("embedder_precision", ""))
    if all(built) and all(target.runtime) and built != target.runtime:
        log.warning("the collection was filled by an embedder running %s %s; this one runs %s %s: "
                    "vectors stay compatible (cosine >= 0.999), no refill", *built, *target.runtime)


def _refusal(config: IndexConfig, target: Target, theirs: str) -> str:
    return (f"refusing to serve: the Milvus collection {config.milvus_collection} at "
            f"{config.milvus_uri} was built from {theirs}, but this replica has catalog "
            f"{config.catalog} (sha256 {target.catalog_sha256[:12]}..., columns "
            f"{target.columns}) and the embedder's model {target.model_name!r} (dimension "
            f"{target.dimension}); point --catalog/--columns/--embedder at the collection's, "
            "choose another --milvus-collection, or drop the collection (and its _build "
            "companion) to rebuild it")


def _fill(client, calls, config, embedder, target, version, progress, previous) -> dict | None:
    """Claim the collection and fill it; None when another replica claimed it first."""
    collection, timeout = config.milvus_collection, config.milvus_timeout_s
    record = {"status": "filling", "owner": target.owner, "catalog_sha256": target.catalog_sha256,
              "columns": target.columns, "model_name": target.model_name,
              "dimension": target.dimension, "heartbeat": time.time(), "written": 0}
    build_info.write(client, collection, record, timeout)
    time.sleep(0.5)  # two claims at once: the last write wins, the other replica waits
    if (build_info.read(client, collection, timeout) or {}).get("owner") != target.owner:
        return None
    if previous is not None and target.differs(previous) and client.has_collection(collection):
        client.drop_collection(collection, timeout=timeout)  # never served: another catalog's
    _create(client, config, target.dimension, version)
    bm25 = schema.SPARSE in _fields(client, collection, target.dimension)
    catalog, report = read_catalog_file(config, target.columns)
    vectors, source = catalog_vectors(config, embedder, catalog, report, target.dimension,
                                      progress)
    beat = _Heartbeat(client, collection, record, timeout)
    write_catalog(client, calls, collection, catalog, vectors, bm25=bm25, progress=progress,
                  heartbeat=beat)
    ready = {**record, "status": "ready", "heartbeat": time.time(), "written": len(catalog),
             "median_price": catalog.median_price, "embeddings_source": source,
             "catalog_format": report.catalog_format, "csv_delimiter": report.csv_delimiter,
             "embedder_backend": target.runtime[0], "embedder_precision": target.runtime[1],
             "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "catalog_path": str(Path(config.catalog).resolve())}
    build_info.write(client, collection, ready, timeout)
    log.info("filled %s with %d products (%s)", collection, len(catalog), source)
    return ready


def _create(client: MilvusClient, config: IndexConfig, dimension: int, version: str) -> None:
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


class _Heartbeat:
    """Called between write batches: refreshes the build record every HEARTBEAT_S."""

    def __init__(self, client, collection: str, record: dict, timeout: float):
        self.client, self.collection, self.record, self.timeout = client, collection, record, timeout
        self.last = time.monotonic()

    def __call__(self, written: int) -> None:
        if time.monotonic() - self.last >= HEARTBEAT_S:
            self.record.update(heartbeat=time.time(), written=written)
            build_info.write(self.client, self.collection, self.record, self.timeout)
            self.last = time.monotonic()
