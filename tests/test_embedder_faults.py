"""Faults and overload, with real processes (one embedder and one index service shared per module):

- the embedder is SIGKILLed and restarted under steady search load: searches fail fast with
  UNAVAILABLE during the outage (each answered within its deadline plus a small slack),
  SimilarProducts and GetProduct keep answering (they need no embedder), RecsysClient's error
  names the embedder (not the index service, which answered) as what cannot be reached,
  searches succeed again
  within 2 s of the restarted embedder reporting SERVING, and the index service is never
  restarted;
- calls beyond the index service's --max-concurrent-rpcs get RESOURCE_EXHAUSTED at once, not a
  timeout.
"""
from __future__ import annotations

import itertools
import threading
import time

import grpc
import pytest

from client import RecsysClient, UnavailableError
from client.generated.recsys.v1 import index_pb2 as pb
from tests.procs import ServiceProcess, health_status
from tests.test_index_support import index_stub, start_embedder, start_index, write_tiny_csv

pytestmark = [pytest.mark.timeout(400), pytest.mark.slow]
SEARCH_DEADLINE_S = 2.0
SLACK_S = 0.5
BACK_WITHIN_S = 2.0


@pytest.fixture(scope="module")
def embedder():
    box = {"proc": start_embedder()}
    yield box
    box["proc"].terminate()


@pytest.fixture(scope="module")
def index(embedder, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    proc = start_index(embedder["proc"].address, write_tiny_csv(tmp / "tiny.csv"), tmp / "data",
                       "--max-concurrent-rpcs", "4", "--grpc-workers", "8")
    yield proc
    proc.terminate()


class SearchLoad:
    """Threads searching with fresh query texts (no query-cache hits), recording every answer as
    (start, end, status code)."""

    def __init__(self, stub, threads: int = 3):
        self.stub, self.results, self.stop = stub, [], threading.Event()
        self.counter, self.lock = itertools.count(), threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self.stop.is_set():
            query = f"wooden desk lamp number {next(self.counter)}"
            start = time.monotonic()
            try:
                self.stub.Search(pb.SearchRequest(query=query, k=3), timeout=SEARCH_DEADLINE_S)
                code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                code = exc.code()
            with self.lock:
                self.results.append((start, time.monotonic(), code))
            if code != grpc.StatusCode.OK:
                self.stop.wait(0.02)  # steady load, not a spin on fast failures

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


def _client_search_error(address: str) -> str:
    with RecsysClient(index=address, timeout=SEARCH_DEADLINE_S) as client:
        with pytest.raises(UnavailableError) as caught:
            client.search("a query nobody has sent before, during the outage", k=3)
    return str(caught.value)


def test_embedder_killed_and_restarted_under_search_load(embedder, index):
    stub = index_stub(index)
    index_pid = index.proc.pid
    old = embedder["proc"]
    with SearchLoad(stub) as load:
        time.sleep(1.0)                                # steady state: searches succeed
        killed_at = time.monotonic()
        old.kill()
        time.sleep(1.5)                                # the outage, under load
        similar = stub.SimilarProducts(pb.SimilarProductsRequest(product_id="t01", k=3), timeout=5)
        product = stub.GetProduct(pb.GetProductRequest(product_id="t02"), timeout=5)
        said = _client_search_error(index.address)
        new = ServiceProcess("embedder_service", ["--port", str(old.port), "--metrics-port",
                                                  str(old.metrics_port)], port=old.port)
        embedder["proc"] = new
        new.wait_serving(180)
        serving_at = time.monotonic()
        while time.monotonic() - serving_at < BACK_WITHIN_S + 1.0:
            with load.lock:
                if any(s >= serving_at and c == grpc.StatusCode.OK for s, _, c in load.results):
                    break
            time.sleep(0.05)
        time.sleep(0.5)
    assert len(similar.hits) == 3 and product.id == "t02"
    assert said.startswith(f"Search on the index service at {index.address} failed: the "
                           f"embedder at {old.address} cannot be reached: "), said
    assert "cannot reach the index service" not in said
    before = [r for r in load.results if r[1] < killed_at]
    outage = [r for r in load.results if killed_at + 0.2 < r[0] and r[1] < serving_at]
    after = [r for r in load.results if r[0] >= serving_at]
    assert before and all(c == grpc.StatusCode.OK for _, _, c in before)
    assert len(outage) >= 3, "no searches ran during the outage"
    failed = [r for r in outage if r[2] != grpc.StatusCode.OK]
    assert {c for _, _, c in failed} == {grpc.StatusCode.UNAVAILABLE}
    slowest = max(end - start for start, end, _ in failed)
    assert slowest <= SEARCH_DEADLINE_S + SLACK_S, f"a failing search took {slowest:.2f} s"
    first_ok = min((end for start, end, c in after if c == grpc.StatusCode.OK), default=None)
    assert first_ok is not None, "no search succeeded after the embedder came back"
    back_after = first_ok - serving_at
    print(f"\nembedder outage: {len(failed)} searches failed (slowest {slowest * 1000:.0f} ms), "
          f"searches back {back_after:.2f} s after SERVING")
    assert back_after <= BACK_WITHIN_S
    assert index.proc.pid == index_pid and index.proc.poll() is None
    assert health_status(index.address) == "SERVING"


def test_calls_beyond_the_concurrency_limit_get_resource_exhausted_at_once(index):
    stub = index_stub(index)
    deadline = 30.0
    started = time.monotonic()
    calls = [stub.Search.future(pb.SearchRequest(query=f"oak desk overload {i}", k=5),
                                timeout=deadline) for i in range(40)]
    codes, answered = [], []
    for call in calls:
        try:
            call.result()
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            codes.append(exc.code())
        answered.append(time.monotonic() - started)
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes and grpc.StatusCode.OK in codes
    assert max(answered) < deadline / 2, "answers came near the deadline: calls queued, not refused"
    assert health_status(index.address) == "SERVING"
