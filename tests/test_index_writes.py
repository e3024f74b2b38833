"""UpsertProducts / DeleteProducts through real processes: applied and searchable at once, all or
nothing on bad input or embedder outage, durable across SIGTERM and SIGKILL restarts, isolated
from concurrent searches, compacted (a restart replays only newer writes), and re-applied on top
of a changed catalog CSV."""
from __future__ import annotations

import json
import threading
import time

import grpc
import pytest

from client.generated.recsys.v1 import index_pb2 as pb
from tests.test_index_support import TINY_ROWS, index_stub, start_index, status_of, write_tiny_csv

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
N = len(TINY_ROWS)


@pytest.fixture
def index(shared_embedder, tmp_path):
    csv_path = write_tiny_csv(tmp_path / "tiny.csv")
    procs = []

    def start(*extra):
        procs.append(start_index(shared_embedder.address, csv_path, tmp_path / "data",
                                 "--max-batch-products", "3", *extra))
        return procs[-1], index_stub(procs[-1])
    yield start
    for proc in procs:
        proc.kill()


@pytest.fixture(scope="module")
def shared_stub(shared_embedder, tmp_path_factory):
    """One index for the tests that must leave the catalog unchanged."""
    tmp = tmp_path_factory.mktemp("writes")
    proc = start_index(shared_embedder.address, write_tiny_csv(tmp / "tiny.csv"), tmp / "data",
                       "--max-batch-products", "3")
    yield index_stub(proc)
    proc.terminate()


BENCH = pb.Product(id="n1", title="Teak garden bench", brand="Outdoorsy", price=120.0,
                   categories=["Garden", "Benches"], material="Teak", color="Brown",
                   attributes={"size": "L"})


def count(stub):
    return stub.GetStats(pb.GetStatsRequest(), timeout=5).product_count


def test_upsert_and_delete_are_served_at_once_and_survive_restarts(index):
    proc, stub = index()
    reply = stub.UpsertProducts(pb.UpsertProductsRequest(products=[
        BENCH, pb.Product(id="t01", title="Oak writing desk, second edition", brand="Woodline")]),
        timeout=30)
    assert (reply.upserted, reply.product_count) == (2, N + 1) and reply.sequence == 1
    hits = stub.Search(pb.SearchRequest(query="teak garden bench", k=1), timeout=30).hits
    assert hits[0].product.id == "n1" and hits[0].product.category == "Benches"
    desk = stub.GetProduct(pb.GetProductRequest(product_id="t01"), timeout=5)
    assert desk.title == "Oak writing desk, second edition" and desk.price > 0  # median price
    assert stub.Search(pb.SearchRequest(query="bench", k=3, filter=pb.Filter(brands=["Outdoorsy"])),
                       timeout=30).hits[0].product.id == "n1"

    deleted = stub.DeleteProducts(pb.DeleteProductsRequest(product_ids=["t02", "nope"]), timeout=10)
    assert (deleted.deleted, list(deleted.not_found), deleted.product_count) == (1, ["nope"], N)
    assert deleted.sequence == 2
    code, _ = status_of(lambda: stub.GetProduct(pb.GetProductRequest(product_id="t02"), timeout=5))
    assert code == grpc.StatusCode.NOT_FOUND
    similar = stub.SimilarProducts(pb.SimilarProductsRequest(product_id="t01", k=N), timeout=5)
    assert "t02" not in [h.product.id for h in similar.hits]

    proc.terminate()
    proc, stub = index()  # clean restart: the log is replayed
    assert count(stub) == N and stub.GetProduct(pb.GetProductRequest(product_id="n1"), timeout=5).title
    stub.UpsertProducts(pb.UpsertProductsRequest(products=[pb.Product(id="n2", title="Jute doormat")]),
                        timeout=30)
    proc.kill()  # SIGKILL right after the acknowledgement
    proc, stub = index()
    assert count(stub) == N + 1
    assert stub.GetProduct(pb.GetProductRequest(product_id="n2"), timeout=5).title == "Jute doormat"
    code, _ = status_of(lambda: stub.GetProduct(pb.GetProductRequest(product_id="t02"), timeout=5))
    assert code == grpc.StatusCode.NOT_FOUND
    assert stub.GetStats(pb.GetStatsRequest(), timeout=5).wal_sequence == 3


@pytest.mark.parametrize("products,must_name", [
    ([], "products is empty"),
    ([BENCH, pb.Product(title="No id")], "products[1]: id is empty"),
    ([BENCH, pb.Product(id="x9", title="  ")], "products[1] (id 'x9'): title is empty"),
    ([pb.Product(id="x9", title="Mat", price=float("nan")), BENCH], "products[0] (id 'x9'): price"),
    ([BENCH, pb.Product(id="x9", title="Mat", price=-1)], "price must be a finite number >= 0"),
    ([BENCH] * 4, "at most 3"),
])
def test_bad_batches_apply_nothing(shared_stub, products, must_name):
    stub = shared_stub
    code, details = status_of(lambda: stub.UpsertProducts(pb.UpsertProductsRequest(products=products),
                                                          timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and must_name in details
    assert count(stub) == N
    code, _ = status_of(lambda: stub.GetProduct(pb.GetProductRequest(product_id="n1"), timeout=5))
    assert code == grpc.StatusCode.NOT_FOUND
    code, details = status_of(lambda: stub.DeleteProducts(pb.DeleteProductsRequest(), timeout=5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "product_ids is empty" in details


def test_a_search_sees_a_batch_entirely_or_not_at_all(index):
    _, stub = index("--compact-every-writes", "4")  # compactions swap the index meanwhile too
    batches, seen, errors, done = 12, [], [], threading.Event()

    def search_loop():
        while not done.is_set():
            try:
                hits = stub.Search(pb.SearchRequest(query="garden furniture", k=1000), timeout=30).hits
            except grpc.RpcError as exc:
                errors.append(f"{exc.code().name}: {exc.details()}")
                continue
            titles = [h.product.title for h in hits]
            seen.append([sum(f" qz{b}x " in t for t in titles) for b in range(batches)])

    threads = [threading.Thread(target=search_loop) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for b in range(batches):
            stub.UpsertProducts(pb.UpsertProductsRequest(products=[
                pb.Product(id=f"b{b}-{i}", title=f"Garden chair qz{b}x model {i}") for i in range(3)]),
                timeout=30)
            if b % 3 == 2:  # and a delete of a whole batch now and then
                stub.DeleteProducts(pb.DeleteProductsRequest(product_ids=[f"b{b - 1}-{i}"
                                                                          for i in range(3)]), timeout=30)
    finally:
        done.set()
        for t in threads:
            t.join()
    assert errors == [] and len(seen) >= batches
    assert all(n in (0, 3) for counts in seen for n in counts), "a search saw part of a batch"
    final = [h.product.title for h in
             stub.Search(pb.SearchRequest(query="garden furniture", k=1000), timeout=30).hits]
    assert sum(any(f" qz{b}x " in t for t in final) for b in range(batches)) == batches - batches // 3


def _manifest(data_dir):
    return json.loads((data_dir / (data_dir / "CURRENT").read_text().strip() / "manifest.json")
                      .read_text())


def test_after_compaction_a_restart_replays_only_newer_writes(index, tmp_path):
    proc, stub = index("--compact-every-writes", "2")
    for pid in ("n1", "n2"):
        stub.UpsertProducts(pb.UpsertProductsRequest(products=[pb.Product(id=pid, title=f"Rug {pid}")]),
                            timeout=30)
    deadline = time.monotonic() + 60
    while _manifest(tmp_path / "data").get("wal_sequence") != 2:  # compacted in the background
        assert time.monotonic() < deadline, "no compaction after 2 writes"
        time.sleep(0.1)
    stub.DeleteProducts(pb.DeleteProductsRequest(product_ids=["n1"]), timeout=10)
    proc.kill()
    proc, stub = index("--compact-every-writes", "2")
    assert "replayed 1 logged writes (through seq 3)" in proc.output()
    assert count(stub) == N + 1 and stub.GetStats(pb.GetStatsRequest(), timeout=5).wal_sequence == 3
    code, _ = status_of(lambda: stub.GetProduct(pb.GetProductRequest(product_id="n1"), timeout=5))
    assert code == grpc.StatusCode.NOT_FOUND
    proc.terminate()  # a clean stop compacts: the next start replays nothing
    assert _manifest(tmp_path / "data")["wal_sequence"] == 3
    proc, stub = index()
    assert "replayed" not in proc.output() and count(stub) == N + 1


def test_a_changed_csv_is_rebuilt_and_uncompacted_writes_reapplied(index, tmp_path):
    proc, stub = index()
    stub.UpsertProducts(pb.UpsertProductsRequest(products=[BENCH]), timeout=30)
    stub.DeleteProducts(pb.DeleteProductsRequest(product_ids=["t03"]), timeout=10)
    proc.kill()  # not compacted: the log holds both writes
    write_tiny_csv(tmp_path / "tiny.csv", TINY_ROWS + [["t11", "Linen curtain", "Drape", "Sheer",
                                                       "$19.00", "Home|Curtains", "White"]])
    proc, stub = index()
    assert "re-applied on top of it" in proc.output()
    assert count(stub) == N + 1  # +t11 from the new file, +n1 logged, -t03 logged
    assert stub.GetProduct(pb.GetProductRequest(product_id="t11"), timeout=5).title == "Linen curtain"
    assert stub.GetProduct(pb.GetProductRequest(product_id="n1"), timeout=5).title == BENCH.title
    code, _ = status_of(lambda: stub.GetProduct(pb.GetProductRequest(product_id="t03"), timeout=5))
    assert code == grpc.StatusCode.NOT_FOUND


def test_a_changed_csv_that_would_drop_compacted_writes_is_refused_unless_told(
        index, shared_embedder, tmp_path):
    """A clean stop compacts the live writes into the artifacts; a rebuild from another file
    used to drop them with one warning line."""
    proc, stub = index()
    stub.UpsertProducts(pb.UpsertProductsRequest(products=[BENCH]), timeout=30)
    proc.terminate()  # compacts: n1 is in the artifacts, the log is empty
    write_tiny_csv(tmp_path / "tiny.csv", TINY_ROWS[1:])
    refused = start_index(shared_embedder.address, tmp_path / "tiny.csv", tmp_path / "data",
                          wait=False)
    try:
        assert refused.proc.wait(120) == 2
    finally:
        refused.kill()  # a start that is not refused serves: leave nothing running
    lines = [line for line in refused.output().splitlines() if line.startswith("index_service:")]
    assert len(lines) == 1 and "refusing to rebuild" in lines[0] and "live writes" in lines[0]
    proc, stub = index("--on-catalog-change", "rebuild")
    assert "dropping them (--on-catalog-change rebuild)" in proc.output()
    assert count(stub) == N - 1  # the new file alone: n1 dropped, as asked


def test_a_word_only_new_products_use_is_found_lexically_once_compacted_by_time(index, tmp_path):
    proc, stub = index("--compact-every-writes", "0", "--compact-after-s", "3")
    stub.UpsertProducts(pb.UpsertProductsRequest(products=[  # min_df 2: the word in 2 products
        pb.Product(id="z1", title="Zorblax brass lantern"),
        pb.Product(id="z2", title="Zorblax copper lantern")]), timeout=30)

    def lexical_ids():
        request = pb.SearchRequest(query="zorblax", k=5, mode=pb.MODE_LEXICAL, min_score=1e-6)
        return sorted(h.product.id for h in stub.Search(request, timeout=10).hits)
    assert lexical_ids() == []  # not in the vocabulary of the last fit
    semantic = stub.Search(pb.SearchRequest(query="zorblax lantern", k=2), timeout=10).hits
    assert {h.product.id for h in semantic} == {"z1", "z2"}  # semantic search: at once
    deadline = time.monotonic() + 60
    while lexical_ids() != ["z1", "z2"]:
        assert time.monotonic() < deadline, "not found lexically 60 s after the write"
        time.sleep(0.2)
    assert _manifest(tmp_path / "data")["wal_sequence"] == 1  # a compaction, not a restart
    assert "compacted" in proc.output()
