"""The real services refusing to start (slow: each case starts a process): a bad --log-level, a
non-finite --grace-s, a malformed --embedder, a taken --port or --metrics-port, an unreadable
token file. Each stops with exactly one line besides its log (no traceback, no gRPC core line)
and the exit code the docs give: 2 for a flag (both services), for the index's other start-up
failures 2, for the embedder's 1. And the running embedder's reflection lists the health
service. The parsing behind them: tests/test_startup_checks.py."""
from __future__ import annotations

import re
import socket
import subprocess
import sys

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.procs import ROOT, free_port
from tests.test_index_support import write_tiny_csv

pytestmark = pytest.mark.slow

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")
TAKEN = "TAKEN"  # replaced by a port another socket listens on


def refused_with_one_line(module: str, args: list[str], tmp_path) -> tuple[int, str]:
    """(exit code, the one stderr line that is not a log line) of a service refusing to start."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        port = str(taken.getsockname()[1])
        args = [port if arg == TAKEN else arg for arg in args]
        if "--port" not in args:
            args = ["--port", str(free_port()), *args]
        if module == "index_service":
            args += ["--catalog", str(write_tiny_csv(tmp_path / "tiny.csv"))]
            if "--data-dir" not in args:
                args += ["--data-dir", str(tmp_path / "data")]
            if "--embedder" not in args:
                args += ["--embedder", f"127.0.0.1:{free_port()}", "--embedder-wait-s", "1"]
        done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr and "add_port" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip() and not LOG_LINE.match(line)]
    assert len(lines) == 1, done.stderr
    return done.returncode, lines[0]


FLAG = {"embedder_service": "python -m embedder_service: error: ",
        "index_service": "python -m index_service: error: "}
START = {"embedder_service": ("embedder_service: ", 1), "index_service": ("index_service: ", 2)}


@pytest.mark.parametrize("module", ["embedder_service", "index_service"])
@pytest.mark.parametrize("args, flag_error, says", [
    (["--log-level", "verbose"], True, "--log-level must be one of DEBUG, INFO, WARNING"),
    (["--grace-s", "nan"], True, "--grace-s must be a finite number"),
    (["--port", TAKEN], False, "address in use by another process (--port)"),
    (["--metrics-port", TAKEN], False, "address in use by another process (--metrics-port)"),
    (["--token-file", "/nonexistent/token"], False,
     "cannot read the full-access token file (--token-file) /nonexistent/token"),
])
def test_a_service_refuses_to_start_with_one_line(module, args, flag_error, says, tmp_path):
    code, line = refused_with_one_line(module, args, tmp_path)
    prefix, start_code = (FLAG[module], 2) if flag_error else START[module]
    assert line.startswith(prefix) and says in line, line
    assert code == start_code, line


@pytest.mark.parametrize("spec", ["localhost", "localhost:abc", "http://127.0.0.1:56001"])
def test_the_index_refuses_a_malformed_embedder_at_once(spec, tmp_path):
    code, line = refused_with_one_line("index_service", ["--embedder", spec], tmp_path)
    assert code == 2 and line.startswith(FLAG["index_service"] + "--embedder: "), line
    assert "HOST:PORT" in line and "127.0.0.1:50051" in line, line


@pytest.mark.parametrize("args, says", [
    (["--embeddings", "/nonexistent/emb.npy"],
     "cannot use /nonexistent/emb.npy: No such file or directory (--embeddings"),
    (["--data-dir", "FILE"], "File exists (--data-dir "),
    (["--embedder-tls-ca", "/nonexistent/ca.pem"],
     "cannot read the CA certificate (--embedder-tls-ca) /nonexistent/ca.pem"),
])
def test_the_index_names_the_flag_of_a_path_it_cannot_use(args, says, tmp_path):
    """These said `[Errno 2] No such file or directory: '/nope.npy'`, `[Errno 17] File exists`
    and `... (--tls-ca)`, the client's flag, not the index service's."""
    (tmp_path / "a-file").write_text("")
    args = [str(tmp_path / "a-file") if arg == "FILE" else arg for arg in args]
    code, line = refused_with_one_line("index_service", args, tmp_path)
    assert code == 2 and line.startswith("index_service: ") and says in line, line


def test_the_embedders_reflection_lists_the_health_service(shared_embedder):
    with grpc.insecure_channel(shared_embedder.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        reply = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=30)))
    names = {service.name for service in reply.list_services_response.service}
    assert {"recsys.v1.Embedder", "grpc.health.v1.Health"} <= names, names
