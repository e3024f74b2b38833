"""The Milvus store's own promises, with real processes: a restarted replica does not re-embed, two
replicas on one Milvus answer alike and see each other's writes, another catalog is refused,
Milvus unreachable at start is waited for, Milvus killed while serving costs UNAVAILABLE
answers (within their deadline), not a restart, and no acknowledged write; filter values and ids
are values, never expression syntax."""
from __future__ import annotations

import time
import uuid

import grpc
import pytest

from client.generated.recsys.v1 import index_pb2 as pb
from index_service.store import encode_page_token
from tests import milvus_server
from tests.procs import ServiceProcess, free_port, health_status
from tests.test_index_support import (TINY_ROWS, embed_calls, index_stub, status_of,
                                      write_tiny_csv)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.skipif(not milvus_server.available(),
                                 reason="no .venv-milvus: run `make test`, which installs it")]


def start_replica(embedder, catalog, uri: str, collection: str, *extra: str,
                  wait: bool = True) -> ServiceProcess:
    port = free_port()
    proc = ServiceProcess("index_service", [
        "--port", str(port), "--embedder", embedder.address, "--catalog", str(catalog),
        "--store", "milvus", "--milvus-uri", uri, "--milvus-collection", collection,
        "--milvus-retry-s", "0.5", *extra], port)
    return proc.wait_serving(300) if wait else proc


def collection_name() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


def search_ids(stub, query: str, **fields) -> list[str]:
    reply = stub.Search(pb.SearchRequest(query=query, k=5, **fields), timeout=30)
    return [h.product.id for h in reply.hits]


def test_a_restarted_replica_serves_at_once_without_embedding(shared_embedder, shared_milvus,
                                                               tmp_path):
    catalog, collection = write_tiny_csv(tmp_path / "tiny.csv"), collection_name()
    first = start_replica(shared_embedder, catalog, shared_milvus.uri, collection)
    answers = search_ids(index_stub(first), "oak desk")
    assert first.terminate() == 0
    calls = embed_calls(shared_embedder)
    again = start_replica(shared_embedder, catalog, shared_milvus.uri, collection)
    try:
        assert embed_calls(shared_embedder) == calls       # nothing embedded at start
        assert "embedding" not in again.output()
        assert search_ids(index_stub(again), "oak desk") == answers
    finally:
        assert again.terminate() == 0


def _visible_after(check, timeout: float = 10.0) -> float:
    """Seconds until `check()` is true (polling every 10 ms); fails past `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "not visible in time"
        time.sleep(0.01)
    return time.monotonic() - started


def test_two_replicas_answer_alike_and_see_each_others_writes(shared_embedder, shared_milvus,
                                                               tmp_path):
    catalog, collection = write_tiny_csv(tmp_path / "tiny.csv"), collection_name()
    a = start_replica(shared_embedder, catalog, shared_milvus.uri, collection)
    b = start_replica(shared_embedder, catalog, shared_milvus.uri, collection)
    stub_a, stub_b = index_stub(a), index_stub(b)
    try:
        for query in ("oak desk", "reading lamp", "soft chair"):
            assert search_ids(stub_a, query) == search_ids(stub_b, query)
        stub_a.UpsertProducts(pb.UpsertProductsRequest(products=[
            pb.Product(id="n1", title="Teak garden bench", categories=["Garden"])]), timeout=60)
        assert stub_a.GetProduct(pb.GetProductRequest(product_id="n1"), timeout=30).title  # at once

        def b_sees_it() -> bool:
            return status_of(lambda: stub_b.GetProduct(pb.GetProductRequest(product_id="n1"),
                                                       timeout=30))[0] == grpc.StatusCode.OK
        lag = _visible_after(b_sees_it)
        print(f"the other replica saw the upsert after {lag * 1000:.0f} ms (Session consistency)")
        stub_b.DeleteProducts(pb.DeleteProductsRequest(product_ids=["t01"]), timeout=60)
        _visible_after(lambda: "t01" not in search_ids(stub_a, "oak writing desk"))
        count = stub_a.GetStats(pb.GetStatsRequest(), timeout=30).product_count
        assert count == stub_b.GetStats(pb.GetStatsRequest(), timeout=30).product_count == len(TINY_ROWS)
    finally:
        assert a.terminate() == 0 and b.terminate() == 0


def test_a_replica_with_another_catalog_is_refused_in_one_line(shared_embedder, shared_milvus,
                                                               tmp_path):
    collection = collection_name()
    first = start_replica(shared_embedder, write_tiny_csv(tmp_path / "a.csv"), shared_milvus.uri,
                          collection)
    other = write_tiny_csv(tmp_path / "b.csv", TINY_ROWS[:5])
    try:
        late = start_replica(shared_embedder, other, shared_milvus.uri, collection, wait=False)
        assert late.proc.wait(120) == 2
        errors = [line for line in late.output().splitlines() if line.startswith("index_service:")]
        assert len(errors) == 1 and "refusing to serve" in errors[0] and collection in errors[0]
        assert "Traceback" not in late.output()
    finally:
        assert first.terminate() == 0


def test_milvus_unreachable_at_start_is_waited_for(shared_embedder, tmp_path):
    server = milvus_server.MilvusServer(tmp_path / "milvus")
    replica = start_replica(shared_embedder, write_tiny_csv(tmp_path / "tiny.csv"), server.uri,
                            collection_name(), wait=False)
    try:
        deadline = time.monotonic() + 60
        while "retrying" not in replica.output():
            assert replica.proc.poll() is None and time.monotonic() < deadline, replica.output()
            time.sleep(0.2)
        assert health_status(replica.address) == "NOT_SERVING"
        server.start()
        replica.wait_serving(300)
        assert search_ids(index_stub(replica), "oak desk")
    finally:
        replica.terminate()
        server.stop()


def test_credentials_in_the_milvus_uri_are_never_logged(shared_embedder, tmp_path):
    """pymilvus takes `user:password@` in the URI; the retry warnings printed it every 2 s."""
    uri = f"http://reader:pw-SECRET-1@127.0.0.1:{free_port()}"  # nobody listens there
    replica = start_replica(shared_embedder, write_tiny_csv(tmp_path / "tiny.csv"), uri,
                            collection_name(), wait=False)
    try:
        deadline = time.monotonic() + 60
        while replica.output().count("retrying") < 2:
            assert replica.proc.poll() is None and time.monotonic() < deadline, replica.output()
            time.sleep(0.2)
    finally:
        replica.terminate()
    assert "SECRET" not in replica.output() and "127.0.0.1" in replica.output()


def test_milvus_killed_while_serving_answers_unavailable_then_serves_again(shared_embedder,
                                                                           tmp_path):
    server = milvus_server.MilvusServer(tmp_path / "milvus").start()
    replica = start_replica(shared_embedder, write_tiny_csv(tmp_path / "tiny.csv"), server.uri,
                            collection_name())
    stub = index_stub(replica)
    try:
        acknowledged = []
        for i in range(20):
            stub.UpsertProducts(pb.UpsertProductsRequest(products=[
                pb.Product(id=f"w{i}", title=f"Walnut side table model {i}")]), timeout=60)
            acknowledged.append(f"w{i}")
        server.kill()
        started = time.monotonic()
        code, details = status_of(lambda: stub.Search(pb.SearchRequest(query="walnut table", k=3),
                                                      timeout=3))
        assert code == grpc.StatusCode.UNAVAILABLE and "Milvus" in details, details
        assert time.monotonic() - started < 3.0
        _visible_after(lambda: health_status(replica.address) == "NOT_SERVING", timeout=30)
        server.start()
        _visible_after(lambda: health_status(replica.address) == "SERVING", timeout=180)
        # SERVING means answering: Milvus answers before it has reloaded the collection, and
        # health waits for the collection (before, calls failed for ~25 s after SERVING).
        assert stub.GetStats(pb.GetStatsRequest(), timeout=10).product_count == len(TINY_ROWS) + 20
        for pid in acknowledged:                        # no acknowledged write was lost
            assert stub.GetProduct(pb.GetProductRequest(product_id=pid), timeout=30).id == pid
        assert search_ids(stub, "walnut side table model 7")[0] == "w7"
    finally:
        assert replica.terminate() == 0, replica.output()
        server.stop()


def test_a_released_collection_is_loaded_again_without_a_restart(shared_embedder, shared_milvus,
                                                                  tmp_path):
    """Someone releases the collection while the replica serves: NOT_SERVING with the reason in
    the log, searches UNAVAILABLE saying why, then the replica has it loaded again and serves."""
    from pymilvus import MilvusClient
    collection = collection_name()
    replica = start_replica(shared_embedder, write_tiny_csv(tmp_path / "tiny.csv"),
                            shared_milvus.uri, collection)
    stub = index_stub(replica)
    admin = MilvusClient(uri=shared_milvus.uri)
    try:
        answers = search_ids(stub, "oak desk")
        admin.release_collection(collection)
        code, details = status_of(lambda: stub.Search(pb.SearchRequest(query="oak desk", k=5),
                                                      timeout=10))
        assert code == grpc.StatusCode.UNAVAILABLE and "retry shortly" in details, details
        _visible_after(lambda: health_status(replica.address) == "NOT_SERVING", timeout=30)
        _visible_after(lambda: health_status(replica.address) == "SERVING", timeout=120)
        assert search_ids(stub, "oak desk") == answers
        assert f"collection {collection} is NotLoad" in replica.output()
    finally:
        admin.close()
        assert replica.terminate() == 0


ODD_BRANDS = ['Quote"d', "Back\\slash", "Line\nbreak", "Ünïcødé 商店", "a' or 1==1", '") or ("1"=="1']


def test_filter_values_are_quoted_not_pasted(shared_embedder, shared_milvus, tmp_path):
    replica = start_replica(shared_embedder, write_tiny_csv(tmp_path / "tiny.csv"),
                            shared_milvus.uri, collection_name())
    stub = index_stub(replica)
    try:
        stub.UpsertProducts(pb.UpsertProductsRequest(products=[
            pb.Product(id=f"odd{i}", title="Oak desk with an odd brand", brand=brand)
            for i, brand in enumerate(ODD_BRANDS)]), timeout=60)
        for i, brand in enumerate(ODD_BRANDS):
            assert search_ids(stub, "oak desk", filter=pb.Filter(brands=[brand])) == [f"odd{i}"]
            assert search_ids(stub, "oak desk", filter=pb.Filter(brands=[brand + "x"])) == []
    finally:
        assert replica.terminate() == 0


ODD_IDS = ["kid's-chair", 'q"2', "q\\3", "x'] or id not in ['", 'x"] or id not in ["']


@pytest.mark.parametrize("server", ["milvus", "milvus-lite"])
def test_ids_are_values_not_expression_syntax(shared_embedder, request, tmp_path, server):
    """Ids reach Milvus quoted: one holding a quote or a backslash is read, found like and deleted
    like any other, and a crafted one (an expression fragment) matches nothing else: it once
    emptied the whole collection in one DeleteProducts."""
    uri = (request.getfixturevalue("shared_milvus").uri if server == "milvus"
           else str(tmp_path / "lite.db"))
    replica = start_replica(shared_embedder, write_tiny_csv(tmp_path / "tiny.csv"), uri,
                            collection_name(), "--milvus-index-type", "flat")
    stub = index_stub(replica)
    try:
        before = stub.GetStats(pb.GetStatsRequest(), timeout=30).product_count
        deleted = stub.DeleteProducts(pb.DeleteProductsRequest(product_ids=ODD_IDS[3:]), timeout=60)
        assert (deleted.deleted, list(deleted.not_found)) == (0, ODD_IDS[3:])
        for crafted in ODD_IDS[3:]:
            code, _ = status_of(lambda: stub.GetProduct(pb.GetProductRequest(product_id=crafted),
                                                        timeout=30))
            assert code == grpc.StatusCode.NOT_FOUND
        stub.UpsertProducts(pb.UpsertProductsRequest(products=[
            pb.Product(id=pid, title=f"Oak desk number {i}") for i, pid in enumerate(ODD_IDS)]),
            timeout=60)
        for pid in ODD_IDS:
            assert stub.GetProduct(pb.GetProductRequest(product_id=pid), timeout=30).id == pid
        like = stub.SimilarProducts(pb.SimilarProductsRequest(product_ids=ODD_IDS[:2], k=3),
                                    timeout=30)
        assert len(like.hits) == 3 and not {h.product.id for h in like.hits} & set(ODD_IDS[:2])
        deleted = stub.DeleteProducts(pb.DeleteProductsRequest(product_ids=ODD_IDS), timeout=60)
        assert (deleted.deleted, deleted.product_count) == (len(ODD_IDS), before)
        for edited in ("m1:", "m1:" + "x" * 1025):  # no id of ours: not a token we issued
            token = encode_page_token("", edited)
            code, _ = status_of(lambda: stub.ListProducts(pb.ListProductsRequest(
                page_token=token), timeout=30))
            assert code == grpc.StatusCode.INVALID_ARGUMENT, edited[:8]
        # 64,000 bytes as a Product, 72,000 as the row's JSON: over Milvus's bound, the caller's to
        # fix (it was INTERNAL)
        many = {f"k{i:04d}": "vvvvv" for i in range(4000)}
        code, details = status_of(lambda: stub.UpsertProducts(pb.UpsertProductsRequest(
            products=[pb.Product(id="wide", title="Wide", attributes=many)]), timeout=60))
        assert (code, "images and attributes over 65535 bytes" in details) == (
            grpc.StatusCode.INVALID_ARGUMENT, True), details
    finally:
        assert replica.terminate() == 0


def test_a_read_token_reads_and_cannot_write_on_the_milvus_store(shared_embedder, shared_milvus,
                                                                  tmp_path):
    read, write = "storefront-read-0123456789", "catalog-writer-0123456789"
    (tmp_path / "read").write_text(read + "\n")
    (tmp_path / "write").write_text(write + "\n")
    replica = start_replica(shared_embedder, write_tiny_csv(tmp_path / "tiny.csv"),
                            shared_milvus.uri, collection_name(), "--token-file",
                            str(tmp_path / "write"), "--read-token-file", str(tmp_path / "read"))
    stub = index_stub(replica)

    def as_(token):
        return (("authorization", f"Bearer {token}"),)
    upsert = pb.UpsertProductsRequest(products=[pb.Product(id="n1", title="Teak garden bench")])
    try:
        reply = stub.Search(pb.SearchRequest(query="oak desk", k=3), timeout=30, metadata=as_(read))
        assert reply.hits
        code, details = status_of(lambda: stub.UpsertProducts(upsert, timeout=60,
                                                              metadata=as_(read)))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "UpsertProducts" in details
        code, _ = status_of(lambda: stub.GetProduct(pb.GetProductRequest(product_id="n1"),
                                                    timeout=30, metadata=as_(read)))
        assert code == grpc.StatusCode.NOT_FOUND  # nothing was written
        assert stub.UpsertProducts(upsert, timeout=60, metadata=as_(write)).upserted == 1
        code, _ = status_of(lambda: stub.Search(pb.SearchRequest(query="oak desk", k=3),
                                                timeout=30))
        assert code == grpc.StatusCode.UNAUTHENTICATED
    finally:
        assert replica.terminate() == 0, replica.output()
