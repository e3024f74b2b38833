"""Start our real services for a bench (loopback only) and talk to them with raw stubs.

Every process started here is stopped on exit of its `with` block, also on errors and Ctrl-C.
Raw stubs (not RecsysClient) on the hot path keep the bench client's own CPU per call small: on
2 cores the client competes with the services.
"""
from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Iterator

import grpc

from client.generated.recsys.v1 import embedder_pb2, embedder_pb2_grpc, index_pb2, index_pb2_grpc
from tests.procs import ServiceProcess, free_port

CHANNEL_OPTIONS = [("grpc.max_send_message_length", 64 * 2 ** 20),
                   ("grpc.max_receive_message_length", 64 * 2 ** 20)]


@contextlib.contextmanager
def embedder(*extra: str, timeout: float = 300.0) -> Iterator[ServiceProcess]:
    port = free_port()
    proc = ServiceProcess("embedder_service", ["--port", str(port), *extra], port)
    try:
        yield proc.wait_serving(timeout)
    finally:
        proc.terminate()


@contextlib.contextmanager
def embedder_address(address: str | None, *extra: str) -> Iterator[str]:
    """`address` when given (an embedder already running), else a new embedder's address."""
    if address:
        yield address
        return
    with embedder(*extra) as proc:
        yield proc.address


def start_index(embedder_target: str, catalog: Path, data_dir: Path, *extra: str) -> ServiceProcess:
    """Starts `python -m index_service` (not yet waited for); the caller stops it."""
    port = free_port()
    return ServiceProcess("index_service", [
        "--port", str(port), "--embedder", embedder_target, "--catalog", str(catalog),
        "--data-dir", str(data_dir), *extra], port)


@contextlib.contextmanager
def index_service(embedder_target: str, catalog: Path, data_dir: Path, *extra: str,
                  timeout: float = 1800.0) -> Iterator[ServiceProcess]:
    proc = start_index(embedder_target, catalog, data_dir, *extra)
    try:
        yield proc.wait_serving(timeout)
    finally:
        proc.terminate()


def serving_time(proc: ServiceProcess, started: float, timeout: float) -> float:
    """Seconds from `started` (time.monotonic()) until `proc` reports SERVING."""
    proc.wait_serving(timeout)
    return time.monotonic() - started


def manifest(data_dir: Path) -> dict:
    """The served build's manifest.json (index_service.artifacts layout)."""
    build = data_dir / (data_dir / "CURRENT").read_text().strip()
    return json.loads((build / "manifest.json").read_text())


def build_dir(data_dir: Path) -> Path:
    return data_dir / (data_dir / "CURRENT").read_text().strip()


class Stubs:
    """Raw stubs on one channel per service; `search` / `embed` return what the bench needs."""

    def __init__(self, index_address: str | None = None, embedder_address: str | None = None,
                 timeout: float = 30.0):
        self.timeout = timeout
        self._channels = []
        if index_address:
            self.index_channel = self._open(index_address)
            self.index = index_pb2_grpc.IndexStub(self.index_channel)
        if embedder_address:
            self.embedder = embedder_pb2_grpc.EmbedderStub(self._open(embedder_address))

    def _open(self, address: str) -> grpc.Channel:
        channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._channels.append(channel)
        return channel

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

    def __enter__(self) -> "Stubs":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def search_text(self, query: str, k: int = 10) -> index_pb2.SearchResponse:
        return self.index.Search(index_pb2.SearchRequest(query=query, k=k), timeout=self.timeout)

    def search_vector(self, vector, k: int = 10) -> index_pb2.SearchResponse:
        return self.index.Search(index_pb2.SearchRequest(vector=vector, k=k), timeout=self.timeout)

    def embed(self, texts: list[str]) -> embedder_pb2.EmbedResponse:
        return self.embedder.Embed(embedder_pb2.EmbedRequest(texts=texts, normalize=True),
                                   timeout=self.timeout)

    def stats(self) -> index_pb2.Stats:
        return self.index.GetStats(index_pb2.GetStatsRequest(), timeout=self.timeout)
