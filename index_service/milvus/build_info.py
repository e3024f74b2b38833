"""What a catalog collection was built from, and whether its first fill finished: one JSON
record in a small companion collection `<collection>_build` (Milvus 2.3 does not keep custom
collection properties across restarts; rows it keeps).

    {"format": 1, "status": "ready" | "filling", "catalog_sha256": ..., "columns": {...},
     "model_name": ..., "dimension": 384, "median_price": ..., "owner": "host:pid",
     "heartbeat": <unix time>, "written": <products written>, "index_type": "hnsw", ...}

A replica that finds "ready" with its own catalog and model serves at once; another catalog or
model: it refuses to start. "filling" with a fresh heartbeat: another replica is filling it, so
this one waits; a stale heartbeat (the filler died): this one takes over.

The filler keeps its claim alive with a `Lease`: a daemon thread renews the heartbeat for the
whole fill (reading, embedding, writing), so a slow embed never looks like a dead filler. Each
renewal reads the record first: once it names another owner (this replica was taken over after
a long silence), nothing more is written and the next `beat()` raises StartupError.
"""
from __future__ import annotations

import json
import logging
import threading
import time

from pymilvus import DataType, MilvusClient

from ..startup_plan import StartupError

log = logging.getLogger("index_service.milvus")
FORMAT = 1
KEY = "build"


def companion(collection: str) -> str:
    return f"{collection}_build"


def ensure(client: MilvusClient, collection: str, timeout: float) -> None:
    name = companion(collection)
    if client.has_collection(name, timeout=timeout):
        return
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                        description=f"what {collection} was built from (recsys)")
    schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("value", DataType.VARCHAR, max_length=65_535)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus 2.3 loads only with a vector
    params = client.prepare_index_params()
    params.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=params,
                             consistency_level="Strong", timeout=timeout)


def read(client: MilvusClient, collection: str, timeout: float) -> dict | None:
    rows = client.get(companion(collection), ids=[KEY], output_fields=["value"], timeout=timeout)
    return json.loads(rows[0]["value"]) if rows else None


def write(client: MilvusClient, collection: str, info: dict, timeout: float) -> None:
    client.upsert(companion(collection),
                  [{"key": KEY, "value": json.dumps({"format": FORMAT, **info}), "v": [0.0, 0.0]}],
                  timeout=timeout)


def claim(client: MilvusClient, collection: str, record: dict, previous: dict | None,
          timeout: float, confirm_s: float) -> bool:
    """Write `record` (a claim on the fill), unless the record changed since `previous` was read;
    the claim holds if the record still names its owner `confirm_s` later (two claims at once:
    the last write wins). Milvus has no compare-and-set: this narrows the race to ~ms."""
    if read(client, collection, timeout) != previous:
        return False
    write(client, collection, record, timeout)
    time.sleep(confirm_s)
    return (read(client, collection, timeout) or {}).get("owner") == record["owner"]


def drop(client: MilvusClient, collection: str, timeout: float) -> None:
    if client.has_collection(companion(collection), timeout=timeout):
        client.drop_collection(companion(collection), timeout=timeout)


class Lease:
    """This replica's claim on the fill, renewed every `beat_s` by a daemon thread from `start()`
    to `finish()` (or `stop()` on failure). `beat(written)` goes before every write batch: it
    raises StartupError once the claim is lost, and, after a silence of over half `stale_s` (this
    process or its Milvus paused: another replica may have taken over) or before the first
    write, reads the record first."""

    def __init__(self, client: MilvusClient, collection: str, record: dict, timeout: float, *,
                 beat_s: float, stale_s: float):
        self.client, self.collection, self.record, self.timeout = client, collection, record, timeout
        self.beat_s, self.stale_s = beat_s, stale_s
        self.lost_to: str | None = None
        self.renewed = time.monotonic()
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="milvus-fill-lease", daemon=True)

    def start(self) -> "Lease":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self.timeout + 1.0)

    def beat(self, written: int) -> None:
        """Before a write: `written` products are in. The first write (written 0) and any after
        a long silence read the record first."""
        self.record["written"] = written
        if self.lost_to is None and (
                written == 0 or time.monotonic() - self.renewed > self.stale_s / 2):
            self.renew()
        self._raise_if_lost()

    def finish(self, ready: dict) -> None:
        """Stop renewing, then write `ready` in place of the claim, if the claim is still ours."""
        self._stop.set()
        with self._lock:
            if self.lost_to is None and self._owner_now() == self.record["owner"]:
                write(self.client, self.collection, ready, self.timeout)
        self.stop()
        self._raise_if_lost()

    def renew(self) -> None:
        """Read the record; still ours: write a fresh heartbeat. Never after finish() or stop()."""
        with self._lock:
            if self.lost_to is not None or self._stop.is_set():
                return
            started = time.monotonic()
            if self._owner_now() == self.record["owner"]:
                self.record["heartbeat"] = time.time()
                write(self.client, self.collection, self.record, self.timeout)
                self.renewed = started

    def _owner_now(self) -> str | None:
        """The record's owner; another one (or none) loses the claim for good."""
        owner = (read(self.client, self.collection, self.timeout) or {}).get("owner")
        if owner != self.record["owner"] and self.lost_to is None:
            self.lost_to = owner or "nobody (the build record was dropped)"
            log.error("%s: this replica's fill was taken over by %s: it writes nothing more",
                      self.collection, self.lost_to)
        return owner

    def check(self) -> None:
        """Raise StartupError once the claim is lost (noticed by the renewal thread)."""
        self._raise_if_lost()

    def _raise_if_lost(self) -> None:
        if self.lost_to is not None:
            raise StartupError(
                f"refusing to serve: this replica ({self.record['owner']}) lost its claim on "
                f"filling the Milvus collection {self.collection} to {self.lost_to} (a filler "
                f"whose record goes unrenewed for {self.stale_s:g} s is taken over: was this "
                "process or Milvus paused?) and wrote nothing more: restart it to serve the "
                "collection once its new filler has made it ready")

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.beat_s) and self.lost_to is None:
            try:
                self.renew()
                failing = False
            except Exception as exc:  # noqa: BLE001 - Milvus unreachable: the fill's own calls say so
                if not failing:
                    log.warning("could not renew the claim on %s: %s: %s", self.collection,
                                type(exc).__name__, " ".join(str(exc).split())[:200])
                failing = True
