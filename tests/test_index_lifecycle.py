"""Index service lifecycle with real processes: artifacts reused on restart (no Embed call), a
changed catalog rebuilds, a model mismatch is refused, bad catalogs stop with one line, imported
embeddings, and an embedder outage: UNAVAILABLE fast, other RPCs keep working, recovery without
a restart."""
from __future__ import annotations

import json
import time

import grpc
import numpy as np
import pytest

from client.generated.recsys.v1 import index_pb2 as pb
from tests.procs import ServiceProcess, free_port, health_status
from tests.test_index_support import (TINY_ROWS, embed_calls, index_args, index_stub, start_embedder,
                                      start_index, status_of, write_tiny_csv)

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


def exited(proc: ServiceProcess, timeout: float = 120) -> tuple[int, str]:
    code = proc.proc.wait(timeout)
    return code, proc.output()


def stats(proc):
    return index_stub(proc).GetStats(pb.GetStatsRequest(), timeout=5)


def test_restart_reuses_artifacts_and_changed_catalog_rebuilds(shared_embedder, tmp_path):
    csv_path, data = write_tiny_csv(tmp_path / "tiny.csv"), tmp_path / "data"
    first = start_index(shared_embedder.address, csv_path, data)
    built = stats(first)
    first.terminate()
    assert built.product_count == len(TINY_ROWS)
    assert (data / "CURRENT").is_file()
    build_dir = data / (data / "CURRENT").read_text().strip()
    for name in ("faiss.index", "embeddings.npy", "manifest.json", "build_report.txt", "lexical.npz",
                 "catalog/catalog.json"):
        assert (build_dir / name).is_file(), name
    manifest = json.loads((build_dir / "manifest.json").read_text())
    assert manifest["product_count"] == len(TINY_ROWS) and manifest["dimension"] == 384
    assert "products: 10" in (build_dir / "build_report.txt").read_text()

    calls = embed_calls(shared_embedder)
    again = start_index(shared_embedder.address, csv_path, data)
    try:
        assert embed_calls(shared_embedder) == calls  # loaded, nothing embedded
        assert stats(again).built_at == built.built_at
        hits = index_stub(again).Search(pb.SearchRequest(query="reading lamp", k=2), timeout=30).hits
        assert {h.product.id for h in hits} <= {"t05", "t06"} and len(hits) == 2
    finally:
        again.terminate()

    # a different index type re-indexes the stored embeddings: still no Embed call
    calls = embed_calls(shared_embedder)  # the search above embedded its query
    hnsw = start_index(shared_embedder.address, csv_path, data, "--index-type", "hnsw")
    try:
        assert embed_calls(shared_embedder) == calls and stats(hnsw).index_type == "hnsw"
    finally:
        hnsw.terminate()

    write_tiny_csv(csv_path, TINY_ROWS + [["t11", "Linen duvet cover", "Softy", "Queen size",
                                           "$60", "Home|Bedding", "Grey"]])
    changed = start_index(shared_embedder.address, csv_path, data)
    try:
        assert embed_calls(shared_embedder) > calls
        s = stats(changed)
        assert s.product_count == len(TINY_ROWS) + 1 and s.index_type == "flat"
        assert index_stub(changed).GetProduct(pb.GetProductRequest(product_id="t11"), timeout=5).title
        assert len([p for p in data.iterdir() if p.name.startswith("build-")]) == 1
    finally:
        changed.terminate()


def test_model_mismatch_is_refused(shared_embedder, tmp_path):
    csv_path, data = write_tiny_csv(tmp_path / "tiny.csv"), tmp_path / "data"
    start_index(shared_embedder.address, csv_path, data).terminate()
    manifest_path = data / (data / "CURRENT").read_text().strip() / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["model_name"] = "some-other-model"
    manifest_path.write_text(json.dumps(manifest))
    proc = start_index(shared_embedder.address, csv_path, data, wait=False)
    code, output = exited(proc)
    assert code != 0 and "refusing to serve" in output and "some-other-model" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("content,problem", [
    (b"\xff\xfe\x00\x01binary\x00stuff", "not UTF-8"),
    (b"name,price\nChair,10\n", "no title column"),
    (b"", "empty"),
    (b"title,price\n", "no products"),
])
def test_bad_catalog_stops_with_one_line(shared_embedder, tmp_path, content, problem):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_bytes(content)
    code, output = exited(start_index(shared_embedder.address, csv_path, tmp_path / "data",
                                      wait=False))
    assert code == 2 and "Traceback" not in output
    line = [l for l in output.splitlines() if l.startswith("index_service:")]
    assert len(line) == 1 and problem in line[0] and str(csv_path) in line[0]


def test_rows_without_title_are_reported_by_line(shared_embedder, tmp_path):
    rows = TINY_ROWS[:3] + [["t99", "", "NoName", "", "", "Home", ""]] + TINY_ROWS[3:]
    csv_path, data = write_tiny_csv(tmp_path / "gaps.csv", rows), tmp_path / "data"
    proc = start_index(shared_embedder.address, csv_path, data)
    try:
        assert stats(proc).product_count == len(TINY_ROWS)
    finally:
        proc.terminate()
    report = (data / (data / "CURRENT").read_text().strip() / "build_report.txt").read_text()
    assert "rows skipped: 1" in report and "line 5: no title" in report


def test_imported_embeddings_need_no_model_time(shared_embedder, tmp_path):
    csv_path, data = write_tiny_csv(tmp_path / "tiny.csv"), tmp_path / "data"
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(TINY_ROWS), 384)).astype(np.float32)
    np.save(tmp_path / "emb.npy", vectors)
    calls = embed_calls(shared_embedder)
    proc = start_index(shared_embedder.address, csv_path, data,
                       "--embeddings", str(tmp_path / "emb.npy"))
    try:
        assert embed_calls(shared_embedder) == calls
        reply = index_stub(proc).SimilarProducts(pb.SimilarProductsRequest(product_id="t01", k=3),
                                                 timeout=5)
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        expected = [f"t{i + 1:02d}" for i in np.argsort(-(unit @ unit[0]))[1:4]]
        assert [h.product.id for h in reply.hits] == expected
    finally:
        proc.terminate()
    np.save(tmp_path / "wrong.npy", vectors[:, :100])
    code, output = exited(start_index(shared_embedder.address, csv_path, tmp_path / "data2",
                                      "--embeddings", str(tmp_path / "wrong.npy"), wait=False))
    assert code == 2 and "dimension 100" in output and "384" in output


def test_embedder_outage_fails_fast_and_recovers_without_restart(tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    csv_path = write_tiny_csv(tmp_path / "tiny.csv")
    index = start_index(address, csv_path, tmp_path / "data", wait=False)
    embedder = None
    try:
        # no embedder yet: health says NOT_SERVING and calls say why
        deadline = time.monotonic() + 60
        while health_status(index.address) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert health_status(index.address) == "NOT_SERVING"
        stub = index_stub(index)
        code, details = status_of(lambda: stub.GetStats(pb.GetStatsRequest(), timeout=5))
        assert code == grpc.StatusCode.UNAVAILABLE and "building" in details

        embedder = start_embedder(port)
        index.wait_serving(timeout=300)
        assert stub.Search(pb.SearchRequest(query="desk", k=3), timeout=30).hits

        embedder.kill()
        started = time.monotonic()
        code, details = status_of(lambda: stub.Search(pb.SearchRequest(query="a new query", k=3),
                                                      timeout=3))
        assert code == grpc.StatusCode.UNAVAILABLE and address in details
        assert time.monotonic() - started < 3.5
        # what needs no embedder keeps working
        assert stub.SimilarProducts(pb.SimilarProductsRequest(product_id="t01", k=3), timeout=5).hits
        assert stub.GetProduct(pb.GetProductRequest(product_id="t02"), timeout=5).id == "t02"
        assert health_status(index.address) == "SERVING"
        # a write that needs the embedder is rejected whole; a delete needs none
        code, details = status_of(lambda: stub.UpsertProducts(pb.UpsertProductsRequest(
            products=[pb.Product(id="new", title="Lamp shade")]), timeout=3))
        assert code == grpc.StatusCode.UNAVAILABLE and address in details
        assert stub.DeleteProducts(pb.DeleteProductsRequest(product_ids=["t10"]), timeout=5).deleted == 1
        assert stub.GetStats(pb.GetStatsRequest(), timeout=5).product_count == len(TINY_ROWS) - 1

        embedder = start_embedder(port)
        back = time.monotonic()
        while True:  # the channel reconnects by itself (backoff capped at 1 s)
            code, _ = status_of(lambda: stub.Search(pb.SearchRequest(query="another query", k=3),
                                                    timeout=3))
            if code == grpc.StatusCode.OK or time.monotonic() - back > 10:
                break
            time.sleep(0.2)
        assert code == grpc.StatusCode.OK
        assert time.monotonic() - back < 5
    finally:
        index.terminate()
        if embedder is not None:
            embedder.terminate()
