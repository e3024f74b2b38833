"""Milvus faults under a serving replica, polled all the while with short deadlines: a Milvus
frozen (SIGSTOP), killed and restarted, or whose collection is loaded but cannot be searched.
Every call answers before its deadline (UNAVAILABLE naming the server in one short line, never
the caller's own DEADLINE_EXCEEDED), and health is never SERVING while searches fail."""
from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

import grpc
import pytest
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from client.generated.recsys.v1 import index_pb2 as pb
from index_service.milvus.schema import VECTOR
from tests import milvus_server
from tests.procs import health_status
from tests.test_index_support import index_stub, status_of, write_tiny_csv
from tests.test_milvus_store import collection_name, start_replica

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600),
              pytest.mark.skipif(not milvus_server.available(),
                                 reason="no .venv-milvus: run `make test`, which installs it")]

DEADLINE_S = 2.0
MAX_MESSAGE = 300


@dataclass
class Answer:
    at: float           # seconds since the fault
    health: str | None  # health just before the call
    rpc: str
    code: grpc.StatusCode
    took: float
    details: str

    def __str__(self) -> str:
        return (f"{self.at:5.1f}s {self.health or '-':11} {self.rpc:10} {self.code.name:17} "
                f"{self.took:4.2f}s {self.details}")


def _ask(stub, address: str, since: float, rpc: str = "Search") -> Answer:
    """Health, then one call with a DEADLINE_S deadline."""
    health = health_status(address)
    call = (pb.SearchRequest(query="oak desk", k=3) if rpc == "Search"
            else pb.GetProductRequest(product_id="t01"))
    started = time.monotonic()
    code, details = status_of(lambda: getattr(stub, rpc)(call, timeout=DEADLINE_S))
    return Answer(started - since, health, rpc, code, time.monotonic() - started, details)


def _poll(stub, address: str, since: float, *, until, limit_s: float,
          rpcs: tuple[str, ...] = ("Search", "GetProduct")) -> list[Answer]:
    """`rpcs` in turn every 0.3 s, until `until(answers)` or `limit_s` after `since`."""
    answers: list[Answer] = []
    while not until(answers) and time.monotonic() - since < limit_s:
        answers.append(_ask(stub, address, since, rpcs[len(answers) % len(rpcs)]))
        time.sleep(0.3)
    return answers


def _serving_again(answers: list[Answer], streak: int = 3) -> bool:
    last = answers[-streak:]
    return len(last) == streak and all(a.health == "SERVING" and a.code == grpc.StatusCode.OK
                                       for a in last)


def _problems(answers: list[Answer], uri: str) -> list[str]:
    """What a timeline breaks of: answered in time, failures UNAVAILABLE in one short line
    naming the server, never SERVING while calls fail (once health has gone NOT_SERVING)."""
    problems = []
    late = [a for a in answers
            if a.code == grpc.StatusCode.DEADLINE_EXCEEDED or a.took >= DEADLINE_S]
    if late:
        problems.append(f"{len(late)} calls answered after the caller's deadline")
    failed = [a for a in answers if a.code != grpc.StatusCode.OK]
    if any(a.code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
           for a in failed):
        problems.append("failures other than UNAVAILABLE")
    wordy = [a for a in failed if a.code == grpc.StatusCode.UNAVAILABLE and (
        len(a.details) > MAX_MESSAGE or uri not in a.details or "debug_error_string" in a.details
        or "_InactiveRpcError" in a.details)]
    if wordy:
        problems.append(f"{len(wordy)} UNAVAILABLE messages too long ({len(wordy[0].details)} "
                        f"characters) or not naming {uri}")
    noticed = next((i for i, a in enumerate(answers) if a.health == "NOT_SERVING"), None)
    if noticed is None:
        problems.append("health never went NOT_SERVING")
    elif lying := [a for a in answers[noticed:]
                   if a.health == "SERVING" and a.code != grpc.StatusCode.OK]:
        problems.append(f"{len(lying)} calls failed while health said SERVING")
    return problems


def _check(uri: str, *phases: tuple[str, list[Answer]]) -> None:
    """Every phase's timeline (printed), and every problem of any of them (asserted at once)."""
    report, problems = [], []
    for what, answers in phases:
        report.append(f"{what}:\n" + "\n".join(map(str, answers)))
        problems += [f"{what}: {problem}" for problem in _problems(answers, uri)]
    print("\n".join(report))
    assert not problems, "\n".join(problems + report)


def _restart_after(server: milvus_server.MilvusServer, delay_s: float) -> threading.Thread:
    def restart():
        time.sleep(delay_s)
        server.start()
    thread = threading.Thread(target=restart, name="milvus-restart", daemon=True)
    thread.start()
    return thread


def test_a_frozen_then_restarted_milvus_costs_timely_short_answers_and_honest_health(
        shared_embedder, tmp_path):
    """SIGSTOP for 6 s (calls time out inside Milvus, at the caller's deadline less the
    service's margin), then SIGKILL and a restart 1 s later (calls meet a refused port, then a
    half-started server, then one reloading the collection)."""
    server = milvus_server.MilvusServer(tmp_path / "milvus").start()
    replica = start_replica(shared_embedder, write_tiny_csv(tmp_path / "tiny.csv"), server.uri,
                            collection_name())
    stub, address, restart = index_stub(replica), replica.address, None
    try:
        assert stub.Search(pb.SearchRequest(query="oak desk", k=3), timeout=30).hits
        os.killpg(server.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        frozen = _poll(stub, address, frozen_at, until=lambda a: False, limit_s=6.0)
        os.killpg(server.pid, signal.SIGCONT)
        thawed = _poll(stub, address, frozen_at, until=_serving_again, limit_s=90.0)
        server.kill()
        killed_at = time.monotonic()
        restart = _restart_after(server, 1.0)
        restarted = _poll(stub, address, killed_at, limit_s=150.0,
                          until=lambda a: _serving_again(a) and not restart.is_alive())
    finally:
        if server.proc.poll() is None:
            os.killpg(server.pid, signal.SIGCONT)
        if restart is not None:
            restart.join(180)
        assert replica.terminate() == 0, replica.output()
        server.stop()
    _check(server.uri, ("Milvus frozen for 6 s, then thawed", frozen + thawed),
           ("Milvus killed, restarted 1 s later", restarted))
    assert all(a.code == grpc.StatusCode.UNAVAILABLE for a in frozen), frozen
    assert _serving_again(thawed) and _serving_again(restarted)


def _index_vectors(admin: MilvusClient, collection: str, metric: str) -> None:
    """Rebuild the collection's vector index with `metric`, and load it again."""
    for _ in range(20):
        admin.release_collection(collection)
        try:  # the replica may ask Milvus to load it again in between: release again
            for name in admin.list_indexes(collection, field_name=VECTOR):
                admin.drop_index(collection, name)
            break
        except MilvusException:
            time.sleep(0.2)
    params = admin.prepare_index_params()
    params.add_index(VECTOR, index_type="HNSW", metric_type=metric,
                     params={"M": 16, "efConstruction": 64})
    admin.create_index(collection, params)
    admin.load_collection(collection)


def test_health_follows_whether_searches_work_not_only_the_load_state(shared_embedder,
                                                                      shared_milvus, tmp_path):
    """The collection loaded with an L2 index: Milvus says Loaded, and fails every search
    (the replica searches by inner product); then the IP index back, and searches work."""
    collection = collection_name()
    replica = start_replica(shared_embedder, write_tiny_csv(tmp_path / "tiny.csv"),
                            shared_milvus.uri, collection)
    stub, address = index_stub(replica), replica.address
    admin = MilvusClient(uri=shared_milvus.uri)
    try:
        assert stub.Search(pb.SearchRequest(query="oak desk", k=3), timeout=30).hits
        _index_vectors(admin, collection, "L2")
        loaded_at = time.monotonic()
        assert admin.get_load_state(collection)["state"].name == "Loaded"
        broken = [_ask(stub, address, loaded_at) for _ in range(2)]
        broken += _poll(stub, address, loaded_at, until=lambda a: False, limit_s=8.0,
                        rpcs=("Search",))
        assert all(a.code == grpc.StatusCode.UNAVAILABLE for a in broken), broken
        assert "metric type" in broken[-1].details, broken[-1]
        assert broken[-1].health == "NOT_SERVING", "\n".join(map(str, broken))
        _index_vectors(admin, collection, "IP")
        fixed_at = time.monotonic()
        fixed = _poll(stub, address, fixed_at, until=_serving_again, limit_s=60.0)
        assert _serving_again(fixed), fixed
        _check(shared_milvus.uri, ("searches failing on a loaded collection", broken + fixed))
    finally:
        admin.close()
        assert replica.terminate() == 0, replica.output()
