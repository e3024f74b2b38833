"""The Milvus store's start-up against a real Milvus 2.3.5 (tests/milvus_server.py): the filler's
heartbeat goes on for the whole fill (its embedder paused with SIGSTOP, as a slow embedder would
be), a filler whose claim was taken over writes nothing more and refuses, a dead filler is still
taken over, a filled collection without its build record is refused, a dropped collection whose
record remains is refilled (another catalog: refused), and a replica started with another index
type than the collection's is refused. Each refusal is one line and exit 2."""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import grpc
import pytest
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from client.generated.recsys.v1 import index_pb2 as pb
from index_service.milvus import build_info, schema, startup
from tests import milvus_server
from tests.procs import EXACT_EMBEDDER_ARGS, ServiceProcess, health_status
from tests.test_index_support import (TINY_ROWS, index_stub, start_embedder, status_of,
                                      write_tiny_csv)
from tests.test_milvus_store import collection_name, start_replica

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.skipif(not milvus_server.available(),
                                 reason="no .venv-milvus: run `make test`, which installs it")]


@pytest.fixture(scope="module")
def pausable_embedder():
    """An embedder of our own, which these tests pause (SIGSTOP) and resume (SIGCONT); the same
    model and precision as the shared one."""
    proc = start_embedder(extra=EXACT_EMBEDDER_ARGS)
    yield proc
    os.kill(proc.proc.pid, signal.SIGCONT)
    assert proc.terminate() == 0, proc.output()


@pytest.fixture
def admin(shared_milvus):
    client = MilvusClient(uri=shared_milvus.uri)
    yield client
    client.close()


def record(admin: MilvusClient, collection: str) -> dict | None:
    return build_info.read(admin, collection, 10.0)


def rows(admin: MilvusClient, collection: str) -> int:
    admin.load_collection(collection)
    reply = admin.query(collection, filter="", output_fields=["count(*)"],
                        consistency_level="Strong")
    return int(reply[0]["count(*)"])


def wait_for(check, timeout: float, what: str, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        time.sleep(poll)
    return result


@contextlib.contextmanager
def paused_while_filling(embedder, admin: MilvusClient, collection: str, replica):
    """Once the replica has claimed the fill (its record says "filling"), SIGSTOP the embedder:
    the replica's embed calls hang as on a slow embedder. Yields the claim; SIGCONT after."""
    claim = wait_for(lambda: _filling(admin, collection) or replica.proc.poll() is not None,
                     120, "claimed", poll=0.02)
    assert claim is not True, replica.output()
    os.kill(embedder.proc.pid, signal.SIGSTOP)
    try:
        yield claim
    finally:
        os.kill(embedder.proc.pid, signal.SIGCONT)


def _filling(admin: MilvusClient, collection: str) -> dict | None:
    try:  # the replica creates the companion, then loads it: not readable in between
        info = record(admin, collection)
    except MilvusException:
        return None
    return info if info and info.get("status") == "filling" else None


def refusal(proc, timeout: float = 120.0) -> str:
    """The one line a refusing replica prints (exit 2); fails (and stops it) if it serves."""
    try:
        wait_for(lambda: proc.proc.poll() is not None or health_status(proc.address) == "SERVING",
                 timeout, "refused or serving")
    finally:
        code = proc.proc.poll()
        proc.terminate()
    assert code == 2, f"served instead of refusing:\n{proc.output()}"
    errors = [line for line in proc.output().splitlines() if line.startswith("index_service:")]
    assert len(errors) == 1 and "Traceback" not in proc.output(), proc.output()
    return errors[0]


def serving_replica(*args) -> ServiceProcess:
    """start_replica, SERVING on return; stopped if it does not get there."""
    proc = start_replica(*args, wait=False)
    try:
        return proc.wait_serving(300)
    except BaseException:
        proc.kill()
        raise


def stop(proc) -> int:
    """SIGTERM once the replica has logged that it serves: its SIGTERM handler is set right after
    (before, a SIGTERM just after SERVING ends it with -15, not a drain)."""
    deadline = time.monotonic() + 30  # no longer: a replica that never serves is stopped too
    while proc.proc.poll() is None and "index_service: serving " not in proc.output() \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)
    return proc.terminate()


def product_count(proc) -> int:
    return index_stub(proc).GetStats(pb.GetStatsRequest(), timeout=30).product_count


def test_the_fill_heartbeat_goes_on_while_the_embedder_is_paused(pausable_embedder, shared_milvus,
                                                                 admin, tmp_path):
    """Before: the heartbeat was written only between write batches, so a long embed looked like
    a dead filler after 60 s and another replica took the fill over, mixing two fills."""
    collection = collection_name()
    replica = start_replica(pausable_embedder, write_tiny_csv(tmp_path / "a.csv"),
                            shared_milvus.uri, collection, wait=False)
    try:
        with paused_while_filling(pausable_embedder, admin, collection, replica) as claim:
            seen = claim["heartbeat"]
            for _ in range(3):  # three renewals in a row, each while nothing is embedded
                beat = wait_for(lambda: (r := record(admin, collection))["heartbeat"] > seen and r,
                                3 * startup.HEARTBEAT_S, "renewed")
                assert beat["status"] == "filling" and beat["owner"] == claim["owner"]
                assert time.time() - beat["heartbeat"] < startup.STALE_S / 4
                seen = beat["heartbeat"]
        replica.wait_serving(120)
        assert product_count(replica) == len(TINY_ROWS)
    finally:
        assert stop(replica) == 0, replica.output()


def test_a_filler_taken_over_writes_nothing_more_and_refuses(pausable_embedder, shared_milvus,
                                                             admin, tmp_path):
    """Before: the filler woke up, wrote its rows into the new owner's collection and its own
    "ready" record over the new owner's, and served. Then: it refused, but only once its
    embedding was done. Now it gives the embedding up as soon as it notices, embedder or not."""
    collection = collection_name()
    replica = start_replica(pausable_embedder, write_tiny_csv(tmp_path / "a.csv"),
                            shared_milvus.uri, collection, wait=False)
    taking = threading.Event()

    def live_taker(claim):  # a live new owner renews its claim, as a real one does
        while not taking.wait(0.5):
            build_info.write(admin, collection, {**claim, "owner": "elsewhere:1",
                                                 "heartbeat": time.time()}, 10.0)

    try:
        with paused_while_filling(pausable_embedder, admin, collection, replica) as claim:
            wait_for(lambda: "embedding 10 products" in replica.output(), 60, "embedding")
            build_info.write(admin, collection, {**claim, "owner": "elsewhere:1",
                                                 "heartbeat": time.time()}, 10.0)
            threading.Thread(target=live_taker, args=(claim,), daemon=True).start()
            # The filler's next renewal reads the record; it gives up while its embed call hangs.
            wait_for(lambda: "lost its claim" in replica.output(), startup.HEARTBEAT_S + 10,
                     "given up while the embedder is paused")
        try:
            line = refusal(replica)
        finally:
            taking.set()
        assert "elsewhere:1" in line and collection in line, line
        assert record(admin, collection)["owner"] == "elsewhere:1"  # never written over
        assert rows(admin, collection) == 0                          # nothing written
    finally:
        replica.terminate()


def test_a_dead_filler_is_taken_over_and_its_rows_dropped(shared_embedder, shared_milvus, admin,
                                                          tmp_path):
    """Still true: a "filling" record silent for over STALE_S, from another catalog, is taken
    over; its half-filled collection is dropped and filled from this replica's catalog."""
    collection = collection_name()
    build_info.ensure(admin, collection, 10.0)
    build_info.write(admin, collection, {
        "status": "filling", "owner": "dead-host:1", "catalog_sha256": "0" * 64, "columns": {},
        "model_name": "another-model", "dimension": 384, "written": 1,
        "heartbeat": time.time() - startup.STALE_S - 5}, 10.0)
    admin.create_collection(collection, schema=schema.collection_schema(384, bm25=False),
                            index_params=schema.index_params(
                                admin, "hnsw", {"m": 16, "ef_construction": 100}, bm25=False,
                                inverted=False))
    admin.upsert(collection, [schema.to_row({"id": "ghost", "title": "Half-filled ghost",
                                             "price": 1.0}, [1.0] + [0.0] * 383, None)])
    replica = serving_replica(shared_embedder, write_tiny_csv(tmp_path / "a.csv"),
                            shared_milvus.uri, collection)
    try:
        assert "left half-filled by dead-host:1" in replica.output()
        assert product_count(replica) == len(TINY_ROWS)
        code, _ = status_of(lambda: index_stub(replica).GetProduct(
            pb.GetProductRequest(product_id="ghost"), timeout=30))
        assert code == grpc.StatusCode.NOT_FOUND
    finally:
        assert stop(replica) == 0, replica.output()


def test_a_filled_collection_without_its_build_record_is_refused(shared_embedder, shared_milvus,
                                                                 admin, tmp_path):
    """Before: the new catalog was upserted into the old collection (old and new mixed)."""
    collection, catalog = collection_name(), write_tiny_csv(tmp_path / "a.csv")
    first = serving_replica(shared_embedder, catalog, shared_milvus.uri, collection)
    assert stop(first) == 0
    admin.drop_collection(build_info.companion(collection))
    for other in (write_tiny_csv(tmp_path / "b.csv", TINY_ROWS[:5]), catalog):
        late = start_replica(shared_embedder, other, shared_milvus.uri, collection, wait=False)
        line = refusal(late)
        assert "refusing to serve" in line and collection in line and "_build" in line, line
        assert "--milvus-collection" in line and "drop" in line, line
    assert rows(admin, collection) == len(TINY_ROWS)
    assert record(admin, collection) is None  # refused before claiming anything


def test_a_dropped_collection_whose_record_remains_is_refilled(shared_embedder, shared_milvus,
                                                               admin, tmp_path):
    """Before: "can't find collection ... retrying in 2 s", NOT_SERVING for good."""
    collection, catalog = collection_name(), write_tiny_csv(tmp_path / "a.csv")
    first = serving_replica(shared_embedder, catalog, shared_milvus.uri, collection)
    assert stop(first) == 0
    admin.drop_collection(collection)
    other = start_replica(shared_embedder, write_tiny_csv(tmp_path / "b.csv", TINY_ROWS[:5]),
                          shared_milvus.uri, collection, wait=False)
    line = refusal(other)  # other replicas of the recorded catalog may still be running
    assert "refusing to serve" in line and collection in line, line
    again = start_replica(shared_embedder, catalog, shared_milvus.uri, collection, wait=False)
    try:
        again.wait_serving(120)
        assert product_count(again) == len(TINY_ROWS)
        assert record(admin, collection)["status"] == "ready"
    finally:
        assert stop(again) == 0, again.output()


def test_a_replica_with_another_index_type_than_the_collection_is_refused(
        shared_embedder, shared_milvus, tmp_path):
    """Before: it reported index_type flat and answered params.exact as exact over HNSW."""
    collection, catalog = collection_name(), write_tiny_csv(tmp_path / "a.csv")
    first = serving_replica(shared_embedder, catalog, shared_milvus.uri, collection)  # hnsw
    try:
        late = start_replica(shared_embedder, catalog, shared_milvus.uri, collection,
                             "--milvus-index-type", "flat", wait=False)
        line = refusal(late)
        assert "HNSW" in line and "--milvus-index-type flat" in line and collection in line, line
        stats = index_stub(first).GetStats(pb.GetStatsRequest(), timeout=30)
        assert stats.index_type == "hnsw"
    finally:
        assert stop(first) == 0, first.output()
