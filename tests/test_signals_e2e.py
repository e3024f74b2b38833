"""Stopping a service by signal at any moment, against the real index service: SIGTERM or Ctrl-C
while it starts ends the start-up with one log line and exit 0 (it used to die silently with 143,
print a KeyboardInterrupt traceback, or, as PID 1 in a container, ignore SIGTERM), and a second
SIGTERM while it drains stops it at once (it used to wait out --grace-s)."""
from __future__ import annotations

import os
import signal
import threading
import time

import grpc
import pytest

from client.generated.recsys.v1 import index_pb2 as pb
from tests.procs import ServiceProcess, free_port
from tests.test_index_support import index_stub, start_embedder, start_index, write_tiny_csv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def wait_for_line(proc: ServiceProcess, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in proc.output():
        assert proc.proc.poll() is None and time.monotonic() < deadline, proc.output()
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_starting_ends_the_start_up_cleanly(tmp_path, signum):
    port = free_port()  # an embedder nobody runs: the index waits for it (--embedder-wait-s)
    proc = ServiceProcess("index_service", [
        "--port", str(free_port()), "--embedder", f"127.0.0.1:{port}", "--embedder-wait-s", "120",
        "--catalog", str(write_tiny_csv(tmp_path / "tiny.csv")), "--data-dir", str(tmp_path / "d")],
        port=0)
    try:
        wait_for_line(proc, "listening on")
        time.sleep(0.5)
        os.kill(proc.proc.pid, signum)
        code = proc.proc.wait(20)
    finally:
        proc.kill()
    output = proc.output()
    assert code == 0, output
    assert f"signal {signal.Signals(signum).name} during start-up: stopping" in output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output


def test_a_second_sigterm_while_draining_stops_at_once(tmp_path):
    embedder = start_embedder()
    index = start_index(embedder.address, write_tiny_csv(tmp_path / "tiny.csv"), tmp_path / "d",
                        "--grace-s", "120")
    stub = index_stub(index)
    outcome = {}

    def slow_write():  # hangs in the embedder, which is stopped: an in-flight call to drain
        try:
            stub.UpsertProducts(pb.UpsertProductsRequest(products=[
                pb.Product(id="w1", title="Walnut stool")]), timeout=100)
        except grpc.RpcError as exc:
            outcome["code"] = exc.code()

    try:
        os.kill(embedder.proc.pid, signal.SIGSTOP)
        writer = threading.Thread(target=slow_write, daemon=True)
        writer.start()
        time.sleep(1.0)
        os.kill(index.proc.pid, signal.SIGTERM)
        wait_for_line(index, "draining calls")
        time.sleep(1.0)
        assert index.proc.poll() is None  # still draining: the write is in flight
        started = time.monotonic()
        os.kill(index.proc.pid, signal.SIGTERM)
        assert index.proc.wait(10) == 1 and time.monotonic() - started < 10
        assert "second signal SIGTERM: stopping now" in index.output()
        writer.join(10)
        assert outcome.get("code") is not None  # the caller was told, not left hanging
    finally:
        os.kill(embedder.proc.pid, signal.SIGCONT)
        index.kill()
        embedder.terminate()
