"""Attributes and product sizes through a real index service process (FAISS store): a product's
attributes come back exactly as sent, a product's new attribute names never change the others
(their replies stay small: a 1,000-product page still fits), the columns of deleted products are
gone after compaction and a restart, a product over the size limit AS RETURNED is refused with
its size and the limit, and the small write checks (empty delete ids, -0.0, image URLs)."""
from __future__ import annotations

import csv
import json
import math

import grpc
import pytest

from client.generated.recsys.v1 import index_pb2 as pb
from index_service.product_writes import MAX_PRODUCT_BYTES
from tests.test_attributes import at_the_limit, big_lamp
from tests.test_index_support import index_stub, start_index, status_of

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

# Our own made-up rows, with one attribute column (origin) that some products leave empty.
ROWS = [["a1", "Oak writing desk", "Woodline", "$189.00", "Home|Desks", "Italy"],
        ["a2", "Mesh office chair", "SitWell", "$150.00", "Home|Chairs", ""],
        ["a3", "Brass floor lamp", "Glow", "$89.99", "Home|Lamps", "India"]]


def write_csv(path):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["uniq_id", "title", "brand", "price", "categories", "origin"])
        writer.writerows(ROWS)
    return path


@pytest.fixture
def index(shared_embedder, tmp_path):
    csv_path, procs = write_csv(tmp_path / "attrs.csv"), []

    def start():
        procs.append(start_index(shared_embedder.address, csv_path, tmp_path / "data"))
        return procs[-1], index_stub(procs[-1])
    yield start
    for proc in procs:
        proc.kill()


def get(stub, pid) -> pb.Product:
    return stub.GetProduct(pb.GetProductRequest(product_id=pid), timeout=10)


def catalog_columns(data_dir) -> list[str]:
    build = data_dir / (data_dir / "CURRENT").read_text().strip()
    return json.loads((build / "catalog" / "catalog.json").read_text())["attributes"]


def test_attributes_round_trip_and_stay_with_their_product(index, tmp_path):
    proc, stub = index()
    assert dict(get(stub, "a2").attributes) == {}  # its origin is empty: no attribute
    sent = [pb.Product(id="plain", title="Plain lamp"),
            pb.Product(id="n1", title="Teak bench", attributes={"size": "L", "origin": "Java"})]
    stub.UpsertProducts(pb.UpsertProductsRequest(products=sent), timeout=60)
    assert [dict(get(stub, p.id).attributes) for p in sent] == [{}, {"size": "L", "origin": "Java"}]
    stub.UpsertProducts(pb.UpsertProductsRequest(products=[
        pb.Product(id=f"amp{i}", title="Amplifier lamp", attributes={f"k{i}_" + "x" * 200: "v"})
        for i in range(30)]), timeout=60)
    assert dict(get(stub, "a1").attributes) == {"origin": "Italy"}  # the others do not change
    assert dict(get(stub, "amp7").attributes) == {"k7_" + "x" * 200: "v"}
    page = stub.ListProducts(pb.ListProductsRequest(page_size=1000), timeout=30)
    assert {p.id: len(p.attributes) for p in page.products if not p.id.startswith("amp")} == {
        "a1": 1, "a2": 0, "a3": 1, "plain": 0, "n1": 2}
    hits = stub.Search(pb.SearchRequest(query="lamp", k=1000), timeout=30).hits
    assert len(hits) == 35 and all(len(h.product.attributes) <= 2 for h in hits)

    stub.DeleteProducts(pb.DeleteProductsRequest(product_ids=[f"amp{i}" for i in range(30)]),
                        timeout=30)
    assert proc.terminate() == 0  # a clean stop compacts
    assert sorted(catalog_columns(tmp_path / "data")) == ["origin", "size"]
    proc, stub = index()  # restarted on the compacted build
    assert [dict(get(stub, pid).attributes) for pid in ("a1", "a2", "n1")] == [
        {"origin": "Italy"}, {}, {"size": "L", "origin": "Java"}]


def test_bad_attribute_names_are_refused(index):
    _, stub = index()
    for attributes, says in (({"": "v"}, "an attribute has an empty name"),
                             ({"k" + "x" * 8000: "v"}, "8001 characters; at most 256")):
        code, details = status_of(lambda: stub.UpsertProducts(pb.UpsertProductsRequest(products=[
            pb.Product(id="bad", title="Lamp", attributes=attributes)]), timeout=30))
        assert (code, says in details) == (grpc.StatusCode.INVALID_ARGUMENT, True), details
    assert status_of(lambda: get(stub, "bad"))[0] == grpc.StatusCode.NOT_FOUND


def test_the_size_limit_is_the_product_as_returned(index):
    _, stub = index()
    largest = at_the_limit("big1")
    stub.UpsertProducts(pb.UpsertProductsRequest(products=[largest]), timeout=60)
    returned = get(stub, "big1")
    assert returned.ByteSize() == MAX_PRODUCT_BYTES  # the computed size is the real reply's
    hits = stub.Search(pb.SearchRequest(query="lamp", k=1000,
                                        filter=pb.Filter(categories=["C" * 19000])), timeout=30).hits
    assert [h.product.ByteSize() for h in hits] == [MAX_PRODUCT_BYTES]
    over = big_lamp(len(largest.attributes["a"]) + 1, "big2")
    code, details = status_of(lambda: stub.UpsertProducts(
        pb.UpsertProductsRequest(products=[over]), timeout=60))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == (f"products[0] (id 'big2'): {MAX_PRODUCT_BYTES + 1} bytes as returned, over "
                       f"{MAX_PRODUCT_BYTES} per product (texts, categories, images and attributes "
                       "together, the breadcrumb's last level counted twice: it is also `category`)")


def test_small_write_checks(index):
    _, stub = index()
    sequence = stub.GetStats(pb.GetStatsRequest(), timeout=10).wal_sequence
    code, details = status_of(lambda: stub.DeleteProducts(
        pb.DeleteProductsRequest(product_ids=["a1", ""]), timeout=30))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT,
                               "product_ids[1] is empty: send the id of every product to delete")
    code, details = status_of(lambda: stub.UpsertProducts(pb.UpsertProductsRequest(products=[
        pb.Product(id="img", title="Lamp", images=["http://x/1.jpg", "http://x/2.jpg\nhttp://x/3"])]),
        timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("products[0] (id 'img'): images[1] holds a control character")
    assert stub.GetStats(pb.GetStatsRequest(), timeout=10).wal_sequence == sequence  # nothing logged
    assert get(stub, "a1").title == "Oak writing desk"
    stub.UpsertProducts(pb.UpsertProductsRequest(products=[
        pb.Product(id="free", title="Free lamp", price=-0.0)]), timeout=60)
    price = get(stub, "free").price
    assert price == 0.0 and math.copysign(1.0, price) == 1.0
