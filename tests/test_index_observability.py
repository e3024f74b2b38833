"""What an operator watches: the Prometheus gauge of products follows writes (it was set once at
start and never moved: after 500 upserts it still said 246), and a log that is not a terminal gets
no progress bar (its carriage returns made one endless line of `docker logs`)."""
from __future__ import annotations

import re
import urllib.request

import pytest

from client.generated.recsys.v1 import index_pb2 as pb
from tests.procs import free_port
from tests.test_index_support import TINY_ROWS, index_stub, start_index, write_tiny_csv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def gauge(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))


def test_the_products_gauge_follows_upserts_and_deletes(shared_embedder, tmp_path):
    metrics_port = free_port()
    proc = start_index(shared_embedder.address, write_tiny_csv(tmp_path / "tiny.csv"),
                       tmp_path / "data", "--metrics-port", str(metrics_port))
    try:
        stub = index_stub(proc)
        assert gauge(metrics_port, "index_products") == len(TINY_ROWS)
        new = [pb.Product(id=f"n{i}", title=f"Pine bookshelf {i}") for i in range(3)]
        stub.UpsertProducts(pb.UpsertProductsRequest(products=new), timeout=60)
        assert gauge(metrics_port, "index_products") == len(TINY_ROWS) + 3
        stub.DeleteProducts(pb.DeleteProductsRequest(product_ids=["n0", TINY_ROWS[0][0]]),
                            timeout=60)
        assert gauge(metrics_port, "index_products") == len(TINY_ROWS) + 1
    finally:
        proc.terminate()


def test_a_log_that_is_no_terminal_gets_no_progress_bar(shared_embedder, tmp_path):
    proc = start_index(shared_embedder.address, write_tiny_csv(tmp_path / "tiny.csv"),
                       tmp_path / "data")
    proc.terminate()
    output = proc.output()
    assert f"embedding {len(TINY_ROWS)} products" in output  # the build ran
    assert "\r" not in output and "it/s" not in output and "text/s]" not in output, output
