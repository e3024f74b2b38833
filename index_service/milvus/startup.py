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
  replicas wait for the record to say "ready". The filler renews its claim for the whole fill
  (build_info.Lease); one taken over after a long silence writes nothing more and refuses.
- Gone while its record says "ready" (dropped by hand): filled again when the record is this
  replica's catalog and model (the record is stale); another's: refused (its replicas may run).
- Not empty but without a build record: refused (what it was built from is unknown).
- A vector index other than --milvus-index-type: refused, naming both.
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
from ..catalog_source import catalog_settings, embedder_model
from ..config import IndexConfig
from ..embedder_client import EmbedderClient
from ..startup_plan import StartupError
from . import build_info, schema
from .errors import MilvusCalls, redacted_uri
from .ingest import create_collection, fill_catalog
from .store import MilvusStore

log = logging.getLogger("index_service.milvus")
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # its failures reach us as exceptions
STALE_S = 60.0       # a filler silent for this long has died: take over
HEARTBEAT_S = 5.0    # a filler renews its claim this often, all through the fill
WAIT_POLL_S = 2.0
CLAIM_S = 0.5        # two claims at once: the last write wins, the other replica waits
SERVE, WAIT, FILL = "serve", "wait", "fill"


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
        fields, kind = _describe(client, config, target.dimension)
        index_type = served_index(config, kind)
        client.load_collection(collection, timeout=max(timeout, 120.0))
    log.info("Milvus %s at %s: collection %s ready (%s index, BM25 %s)", version,
             calls.uri, collection, index_type,
             "yes" if schema.SPARSE in fields else "no: MODE_LEXICAL/HYBRID answer FAILED_PRECONDITION")
    return MilvusStore(client, calls, collection=collection, info=info,
                       consistency=config.milvus_consistency,
                       index_type=index_type, ef_search=config.hnsw_ef_search,
                       bm25=schema.SPARSE in fields, server_version=version)


def _describe(client: MilvusClient, config: IndexConfig, dimension: int) -> tuple[set[str], str]:
    """The collection's field names and its vector index type as Milvus names it ("HNSW");
    StartupError when it is not one of ours."""
    collection = config.milvus_collection
    description = client.describe_collection(collection, timeout=config.milvus_timeout_s)
    fields = {f["name"]: f for f in description["fields"]}
    vector = fields.get(schema.VECTOR)
    missing = [name for name in schema.PRODUCT_FIELDS if name not in fields]
    indexes = client.list_indexes(collection, field_name=schema.VECTOR) if vector else []
    if missing or vector is None or int(vector["params"].get("dim", 0)) != dimension \
            or not indexes:
        raise StartupError(f"the Milvus collection {collection} is not a recsys catalog of "
                           f"dimension {dimension} (fields: {', '.join(fields)}): choose another "
                           "--milvus-collection")
    kind = client.describe_index(collection, indexes[0], timeout=config.milvus_timeout_s)
    return set(fields), str(kind.get("index_type", "?"))


def served_index(config: IndexConfig, kind: str) -> str:
    """The index type to serve ("hnsw", "flat"): the collection's, which must be the flag's."""
    if kind.lower() == config.milvus_index_type:
        return kind.lower()
    fix = (f"start it with --milvus-index-type {kind.lower()} (the index is chosen when the "
           "collection is created), " if kind.lower() in ("hnsw", "flat") else "")
    raise StartupError(
        f"refusing to serve: the Milvus collection {config.milvus_collection} at "
        f"{redacted_uri(config.milvus_uri)} has a {kind} vector index, but this replica was "
        f"started with --milvus-index-type {config.milvus_index_type}: {fix}choose another "
        "--milvus-collection, or drop the collection (and its _build companion) to rebuild it")


def next_step(info: dict | None, target: Target, config: IndexConfig, *, exists: bool,
              now: float) -> str:
    """SERVE, WAIT (another replica is filling) or FILL, for this build record and whether the
    collection exists; StartupError when this replica must not serve it."""
    if info and info.get("status") == "ready":
        if (other := target.differs(info)) is not None:
            raise StartupError(_refusal(config, target, other, gone=not exists))
        return SERVE if exists else FILL  # gone: the record is stale, and ours: fill it again
    if info and info.get("owner") != target.owner \
            and now - float(info.get("heartbeat", 0)) < STALE_S:
        return WAIT
    return FILL


def _settle(client, calls, config, embedder, target, version, progress) -> dict:
    """Wait until the collection holds a ready build of `target`, filling it if nobody does."""
    collection, timeout = config.milvus_collection, config.milvus_timeout_s
    while True:
        info = build_info.read(client, collection, timeout)
        exists = client.has_collection(collection, timeout=timeout)
        step = next_step(info, target, config, exists=exists, now=time.time())
        if step == SERVE:
            _log_runtime_change(info, target)
            return info
        if step == WAIT:
            log.info("waiting for %s, which is filling %s (%s products written)", info["owner"],
                     collection, info.get("written", 0))
            time.sleep(WAIT_POLL_S)
            continue
        if not _may_fill(client, config, target, info, exists):
            continue
        filled = _fill(client, calls, config, embedder, target, version, progress, info)
        if filled is not None:
            return filled


def _may_fill(client, config: IndexConfig, target: Target, info: dict | None,
              exists: bool) -> bool:
    """Before claiming anything: refuse a collection this replica would fill into that holds
    products of unknown origin or another index; False when the record changed meanwhile."""
    collection, timeout = config.milvus_collection, config.milvus_timeout_s
    if exists and (info is None or target.differs(info) is None):  # kept, and filled into
        _, kind = _describe(client, config, target.dimension)
        if info is None and (count := _row_count(client, config)) > 0:
            if build_info.read(client, collection, timeout) is not None:
                return False  # a replica claimed it meanwhile: settle again
            raise StartupError(unrecorded_refusal(config, count))
        served_index(config, kind)
    if info and info.get("status") == "ready":
        log.warning("%s is gone, but its build record says it was filled from this catalog and "
                    "model: filling it again", collection)
    elif info and info.get("owner") != target.owner:
        log.warning("%s was left half-filled by %s (silent for over %g s): filling it here",
                    collection, info.get("owner"), STALE_S)
    return True


def _row_count(client, config: IndexConfig) -> int:
    collection, timeout = config.milvus_collection, config.milvus_timeout_s
    client.load_collection(collection, timeout=max(timeout, 120.0))
    rows = client.query(collection, filter="", output_fields=["count(*)"],
                        consistency_level="Strong", timeout=max(timeout, 30.0))
    return int(rows[0]["count(*)"])


def unrecorded_refusal(config: IndexConfig, count: int) -> str:
    collection = config.milvus_collection
    return (f"refusing to serve: the Milvus collection {collection} at "
            f"{redacted_uri(config.milvus_uri)} holds {count} products but has no build record ({build_info.companion(collection)}"
            " is missing or empty), so what it was built from is unknown and it is neither "
            f"served nor filled from {config.catalog}: drop the collection to rebuild it from "
            "this catalog, or choose another --milvus-collection")


def _log_runtime_change(info: dict, target: Target) -> None:
    built = (info.get("embedder_backend", ""), info.get("embedder_precision", ""))
    if all(built) and all(target.runtime) and built != target.runtime:
        log.warning("the collection was filled by an embedder running %s %s; this one runs %s %s: "
                    "vectors stay compatible (cosine >= 0.999), no refill", *built, *target.runtime)


def _refusal(config: IndexConfig, target: Target, theirs: str, gone: bool = False) -> str:
    where = (f"was built from {theirs} (the collection is gone; its {config.milvus_collection}"
             "_build record remains, and replicas of that catalog may still run)" if gone else
             f"was built from {theirs}")
    return (f"refusing to serve: the Milvus collection {config.milvus_collection} at "
            f"{redacted_uri(config.milvus_uri)} {where}, but this replica has catalog "
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
    takeover = bool(previous) and previous.get("status") == "filling" \
        and previous.get("owner") != target.owner
    # Taking over a silent filler: wait over a heartbeat, so that one still alive (paused, cut
    # off from Milvus) has read this claim and stopped, or has renewed its own and keeps it.
    if not build_info.claim(client, collection, record, previous, timeout,
                            2 * HEARTBEAT_S if takeover else CLAIM_S):
        return None
    lease = build_info.Lease(client, collection, record, timeout, beat_s=HEARTBEAT_S,
                             stale_s=STALE_S).start()
    try:
        if previous is not None and target.differs(previous) \
                and client.has_collection(collection, timeout=timeout):
            lease.beat(0)  # still ours: the filler taken over has stopped
            client.drop_collection(collection, timeout=timeout)  # never served: another catalog's
        create_collection(client, config, target.dimension, version)
        fields, _ = _describe(client, config, target.dimension)
        ready = fill_catalog(client, calls, config, embedder, lease, bm25=schema.SPARSE in fields,
                             runtime=target.runtime, progress=progress)
        lease.finish(ready)
    finally:
        lease.stop()
    log.info("filled %s with %d products (%s)", collection, ready["written"],
             ready["embeddings_source"])
    return ready
