"""The claim a filling replica holds on the Milvus collection (index_service/milvus/build_info.py
Lease), in this process against a real Milvus 2.3.5: renewed by its thread until finished, and
once another replica's claim is in the record, nothing more written and the next write refused."""
from __future__ import annotations

import time

import pytest
from pymilvus import MilvusClient

from index_service.milvus import build_info, startup
from index_service.startup_plan import StartupError
from tests import milvus_server
from tests.test_milvus_startup import admin, record, wait_for  # noqa: F401 - admin: a fixture
from tests.test_milvus_store import collection_name

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300),
              pytest.mark.skipif(not milvus_server.available(),
                                 reason="no .venv-milvus: run `make test`, which installs it")]


def _lease(admin: MilvusClient, collection: str, beat_s: float):
    build_info.ensure(admin, collection, 10.0)
    claim = {"status": "filling", "owner": "me:1", "heartbeat": time.time(), "written": 0}
    build_info.write(admin, collection, claim, 10.0)
    return build_info.Lease(admin, collection, dict(claim), 10.0, beat_s=beat_s,
                            stale_s=startup.STALE_S).start()


def test_the_lease_renews_until_taken_over_then_writes_nothing(admin):
    collection = collection_name()
    lease = _lease(admin, collection, beat_s=2.0)
    try:
        lease.beat(7)
        first = record(admin, collection)["heartbeat"]
        renewed = wait_for(lambda: (r := record(admin, collection))["heartbeat"] > first and r,
                           5, "renewed")
        assert renewed["written"] == 7 and renewed["owner"] == "me:1"
        # Right after a renewal, as a replica taking over would (one that lands while a renewal
        # is under way can be written over: a real taker waits two heartbeats to see that).
        build_info.write(admin, collection, {"status": "filling", "owner": "other:2",
                                             "heartbeat": time.time()}, 10.0)
        wait_for(lambda: lease.lost_to == "other:2", 5, "noticed")
        with pytest.raises(StartupError, match="other:2"):
            lease.beat(8)
        with pytest.raises(StartupError, match="other:2"):
            lease.finish({"status": "ready", "owner": "me:1"})
        time.sleep(0.6)
        assert record(admin, collection)["owner"] == "other:2"
    finally:
        lease.stop()
        build_info.drop(admin, collection, 10.0)


@pytest.mark.parametrize("written, silent_s", [(0, 0.0), (1, startup.STALE_S)])
def test_the_first_write_and_one_after_a_long_silence_check_the_record(admin, written, silent_s):
    """Before the first write, and after this process (or its Milvus) paused past half the
    takeover delay, a write first reads the record: a filler taken over writes nothing."""
    collection = collection_name()
    lease = _lease(admin, collection, beat_s=3600.0)  # the thread never gets to renew
    try:
        build_info.write(admin, collection, {"status": "filling", "owner": "other:2",
                                             "heartbeat": time.time()}, 10.0)
        lease.renewed -= silent_s  # as after a long pause
        with pytest.raises(StartupError, match="other:2"):
            lease.beat(written)
    finally:
        lease.stop()
        build_info.drop(admin, collection, 10.0)


def test_a_finished_lease_writes_ready_and_no_heartbeat_after_it(admin):
    collection = collection_name()
    lease = _lease(admin, collection, beat_s=0.1)
    try:
        lease.finish({"status": "ready", "owner": "me:1", "written": 3})
        time.sleep(0.5)
        assert record(admin, collection)["status"] == "ready"
    finally:
        lease.stop()
        build_info.drop(admin, collection, 10.0)
