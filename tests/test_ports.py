"""Loopback ports for the services the tests (and `make run`) start: two services never get the
same port, and a health check is answered by the service asked for, not by whichever of our
servers holds the port.

A full run once failed this way: the compose test asked for the embedder's and the index's ports
before either bound, got the same port twice, the index service could not listen, and the
embedder answered its health check, so the test talked to the embedder and got "wrong token"."""
from __future__ import annotations

import socket
from concurrent import futures

import grpc
import pytest

from scripts.run_demo import port_or_free
from servekit.health import Health
from tests import procs
from tests.procs import ServiceProcess, free_port


def test_free_port_never_hands_out_a_port_twice():
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)


@pytest.mark.parametrize("workers", [1, 2, 4, 8])
def test_each_pytest_worker_has_its_own_ports_below_the_ephemeral_range(monkeypatch, workers):
    slices = [procs._worker_slice(f"gw{n}", str(workers)) for n in range(workers)]
    assert all(22000 <= s.start and s.stop <= 32768 and len(s) > 1000 for s in slices)
    assert all(set(a).isdisjoint(b) for i, a in enumerate(slices) for b in slices[i + 1:])
    assert procs._worker_slice(None, None) is None and procs._worker_slice("master", "2") is None
    monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{workers - 1}")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(workers))
    ports = [free_port() for _ in range(50)]
    assert all(p in slices[-1] for p in ports) and len(set(ports)) == len(ports)


def test_the_demo_never_gives_both_services_one_port():
    with socket.socket() as held:  # the preferred port is taken: a free one instead
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        first = port_or_free(taken)
        assert first != taken
        assert port_or_free(first, taken=(first,)) not in (first, taken)
    assert port_or_free(first, taken=()) == first  # free now: the preferred one


@pytest.mark.slow
def test_waiting_for_the_index_is_not_fooled_by_an_embedder_on_its_port(tmp_path):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    health = Health(server, ["recsys.v1.Embedder"])
    server.start()
    health.set_serving(True)
    try:
        index = ServiceProcess("index_service", ["--port", str(port), "--embedder", "127.0.0.1:1",
                                                 "--catalog", "data/products.csv",
                                                 "--data-dir", str(tmp_path)], port)
        with pytest.raises(RuntimeError, match=f"cannot listen on 127.0.0.1:{port}"):
            index.wait_serving(120)
    finally:
        server.stop(None)
