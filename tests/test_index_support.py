"""Helpers shared by the index service's process tests (no tests here).

Each test module starts its own index service processes, on loopback ports, with data directories
under pytest's tmp_path_factory; they use the session's shared embedder (conftest.py) unless a
test kills, restarts or reconfigures its embedder, which then starts its own (start_embedder).
"""
from __future__ import annotations

import csv
import re
import urllib.request
from pathlib import Path

import grpc

from client.generated.recsys.v1 import index_pb2_grpc
from tests.procs import ServiceProcess, free_port

EMBED_METRIC = re.compile(
    r'^grpc_server_requests_total\{[^}]*method="/recsys\.v1\.Embedder/Embed"[^}]*\}\s+([0-9.e+]+)$',
    re.MULTILINE)

# Our own made-up catalog rows (uniq_id, title, brand, description, price, categories, color).
TINY_ROWS = [
    ["t01", "Oak writing desk", "Woodline", "Solid oak desk with two drawers", "$189.00",
     "['Home', 'Furniture', 'Office Furniture', 'Desks']", "Brown"],
    ["t02", "Walnut standing desk", "Woodline", "Height adjustable desk", "$420.00",
     "['Home', 'Furniture', 'Office Furniture', 'Desks']", "Walnut"],
    ["t03", "Mesh office chair", "SitWell", "Ergonomic chair with lumbar support", "$150.00",
     "['Home', 'Furniture', 'Office Furniture', 'Chairs']", "Black"],
    ["t04", "Velvet armchair", "SitWell", "Soft velvet lounge chair", "",
     "['Home', 'Furniture', 'Living Room Furniture', 'Chairs']", "Green"],
    ["t05", "Ceramic table lamp", "Glow", "Warm light bedside lamp", "$35.50",
     "Home > Lighting > Lamps", "White"],
    ["t06", "Brass floor lamp", "Glow", "Tall reading lamp", "$89.99", "Home > Lighting > Lamps", "Gold"],
    ["t07", "Wool area rug", "Loomcraft", "Hand woven wool rug 5x8", "$210.00", "Home|Rugs", "Beige"],
    ["t08", "Cotton bath towel set", "Softy", "Six absorbent towels", "$29.00", "Home|Bath|Towels", "Blue"],
    ["t09", "Steel shoe rack", "Hallway", "Four tier shoe storage", "$24.99",
     "['Home', 'Storage', 'Shoe Organizers']", "Silver"],
    ["t10", "Bamboo bookshelf", "Woodline", "Five shelf bookcase", "$99.00",
     "['Home', 'Furniture', 'Bookcases, Cabinets & Shelves']", "Natural"],
]
TINY_HEADER = ["uniq_id", "title", "brand", "description", "price", "categories", "color"]


def write_tiny_csv(path: Path, rows=TINY_ROWS) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(TINY_HEADER)
        writer.writerows(rows)
    return path


def start_embedder(port: int | None = None, extra: tuple[str, ...] = ()) -> ServiceProcess:
    """A real embedder with a metrics endpoint (`.metrics_port`), SERVING on return."""
    port, metrics_port = port or free_port(), free_port()
    proc = ServiceProcess("embedder_service", ["--port", str(port), "--metrics-port", str(metrics_port),
                                               *extra], port=port)
    proc.metrics_port = metrics_port
    return proc.wait_serving(timeout=180)


def embed_calls(embedder: ServiceProcess) -> float:
    """Embed calls the embedder has answered (any status), from its Prometheus endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{embedder.metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(v) for v in EMBED_METRIC.findall(text))


def index_args(embedder_address: str, catalog: Path, data_dir: Path, *extra: str) -> list[str]:
    return ["--embedder", embedder_address, "--catalog", str(catalog), "--data-dir", str(data_dir),
            *extra]


def start_index(embedder_address: str, catalog: Path, data_dir: Path, *extra: str,
                wait: bool = True) -> ServiceProcess:
    port = free_port()
    proc = ServiceProcess("index_service", ["--port", str(port),
                                            *index_args(embedder_address, catalog, data_dir, *extra)],
                          port=port)
    return proc.wait_serving(timeout=600) if wait else proc


def index_stub(proc: ServiceProcess) -> index_pb2_grpc.IndexStub:
    channel = grpc.insecure_channel(proc.address)
    return index_pb2_grpc.IndexStub(channel)


def status_of(call) -> tuple[grpc.StatusCode, str]:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""
