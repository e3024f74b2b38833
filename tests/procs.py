"""Start our real services as separate processes on loopback ports, for tests and benchmarks."""
from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
IKARUS_CSV = SHARED_DATA / "ikarus_products.csv"
# Embedder flags for tests that compare with in-process torch fp32 to 1e-5: the default backend
# at fp32 (OpenVINO fp32 = torch fp32 to ~2e-7). bf16, the default where the CPU has it, is held
# to the quality bar instead (tests/test_embedder_quality.py).
EXACT_EMBEDDER_ARGS = ("--precision", "fp32")


_HANDED_OUT: set[int] = set()
# The health service name each of our servers reports, so that a health check cannot be answered
# by another of our servers that happens to hold the port.
HEALTH_SERVICE = {"embedder_service": "recsys.v1.Embedder", "index_service": "recsys.v1.Index"}


# Under pytest-xdist (`make test` runs two workers) each worker takes its ports from its own
# slice of 22000-32767: below Linux's ephemeral range (32768-60999), so no kernel-chosen port
# (another worker's bind to port 0, an outgoing connection) can be one of them, and above the
# ports a test Milvus takes (its defaults and up: 2479, 9091, 13333, 19530, 21121, 53100).
_WORKER_PORTS = range(22000, 32768)


def _worker_slice(worker: str | None, workers: str | None) -> range | None:
    """The ports of pytest-xdist worker `worker` ("gw0", "gw1", ...) of `workers` (their count,
    PYTEST_XDIST_WORKER_COUNT): one slice each, however many; None outside xdist."""
    number = (worker or "").removeprefix("gw")
    if number == worker or not number.isdigit() or not (workers or "").isdigit():
        return None
    size = len(_WORKER_PORTS) // max(int(workers), 1)
    start = _WORKER_PORTS.start + int(number) * size
    return range(start, start + size)


def free_port() -> int:
    """A loopback port free now and never handed out before in this process: two ports asked for
    before either server binds would otherwise often be the same one (the kernel reuses a port
    just released), and one server would answer for both. Under pytest-xdist, from this
    worker's own slice of ports, so two workers never get the same one."""
    ports = _worker_slice(os.environ.get("PYTEST_XDIST_WORKER"),
                          os.environ.get("PYTEST_XDIST_WORKER_COUNT"))
    for _ in range(100):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", random.choice(ports) if ports else 0))
            except OSError:  # taken
                continue
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no fresh loopback port after 100 tries")


def health_status(address: str, service: str = "", timeout: float = 1.0,
                  credentials: grpc.ChannelCredentials | None = None):
    """The health status name ("SERVING", "NOT_SERVING", ...) or None when unreachable.
    `credentials`: for a TLS server (health needs no token)."""
    channel = (grpc.secure_channel(address, credentials) if credentials
               else grpc.insecure_channel(address))
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError:
            return None
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


class ServiceProcess:
    """`python -m module args...` with its output in a log file; `wait_serving()` polls health
    (over TLS with `credentials`, for a service started with --tls-cert/--tls-key)."""

    def __init__(self, module: str, args: list[str], port: int, env: dict | None = None,
                 credentials: grpc.ChannelCredentials | None = None):
        self.module, self.args, self.port = module, args, port
        self.credentials = credentials
        self.address = f"127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(prefix=f"{module}-", suffix=".log", delete=False)
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT, env=full_env)

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def wait_serving(self, timeout: float = 180.0) -> "ServiceProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited with {self.proc.returncode}:\n{self.output()}")
            if health_status(self.address, HEALTH_SERVICE.get(self.module, ""),
                             credentials=self.credentials) == "SERVING":
                return self
            time.sleep(0.1)
        raise TimeoutError(f"{self.module} not SERVING after {timeout}s:\n{self.output()}")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code (kills after `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    @contextlib.contextmanager
    def serving_until_clean_exit(self, timeout: float = 180.0):
        """For module fixtures: wait until SERVING, yield the process, then SIGTERM it and assert
        it exited 0 (a clean drain is part of what the tests check)."""
        try:
            yield self.wait_serving(timeout)
        finally:
            assert self.terminate() == 0, self.output()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.terminate()
        os.unlink(self.log.name)


@contextlib.contextmanager
def running_pair(catalog: Path, data_dir: Path, *, embedder_args=(), index_args=(),
                 embedder_host: str = "127.0.0.1",
                 credentials: grpc.ChannelCredentials | None = None,
                 embedder: ServiceProcess | None = None):
    """A real embedder and an index service on it (dialled as `embedder_host`), both SERVING;
    yields (embedder, index) and terminates both afterwards. With `embedder` (one already
    SERVING, such as the shared_embedder fixture), the index uses it and only the index is
    started and terminated here."""
    if embedder is not None and embedder_args:
        raise ValueError("embedder_args configure an embedder started here, not a given one")
    index_port = free_port()
    started = []
    try:
        if embedder is None:
            embedder_port = free_port()
            embedder = ServiceProcess("embedder_service", ["--port", str(embedder_port),
                                                           *embedder_args], embedder_port,
                                      credentials=credentials)
            started.append(embedder)
            embedder.wait_serving(180)
        index = ServiceProcess("index_service", [
            "--port", str(index_port), "--embedder", f"{embedder_host}:{embedder.port}",
            "--catalog", str(catalog), "--data-dir", str(data_dir), *index_args], index_port,
            credentials=credentials)
        started.append(index)
        index.wait_serving(300)
        yield embedder, index
    finally:
        for process in reversed(started):
            process.terminate()
