"""A product's attributes are its own, and what writes may do to the catalog is bounded, in-process
(no services): the catalog returns only a product's non-empty attributes (both stores), another
product's new attribute names never show up on it, compaction drops the columns no live product
uses, attribute names are bounded (length, empty, how many the catalog holds), the product size
limit counts the product as returned, and the small write checks (empty delete ids, -0.0 prices,
control characters in image URLs)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from client.generated.recsys.v1 import index_pb2 as pb
from index_service import vectors
from index_service.catalog import Catalog
from index_service.catalog_reader import read_catalog
from index_service.catalog_updates import concat, products_catalog, select
from index_service.columns import StringColumn
from index_service.compaction import write_compacted
from index_service.faiss_store import FaissStore
from index_service.lexical import LexicalIndex
from index_service.milvus import schema
from index_service.product_writes import (MAX_ATTRIBUTE_KEY_CHARS, MAX_ATTRIBUTE_NAMES,
                                          MAX_PRODUCT_BYTES, ProductWrites, check_attribute_names,
                                          clean_products, returned_product, validate_products)
from index_service.snapshot import ServedState, Snapshot
from index_service.store import StoreHolder
from index_service.wal import WriteAheadLog
from index_service.writes import CatalogWriter
from servekit.errors import InvalidArgument
from tests.test_compaction import FakeEmbedder
from tests.test_index_support import write_tiny_csv

DIM = 16


def amp(i: int, **fields) -> dict:
    return {"id": f"amp{i}", "title": "Amplifier lamp", "price": 10.0, **fields}


# -- the catalog: a product's attributes are its own -------------------------------------------

def test_a_product_gets_only_its_own_non_empty_attributes():
    base = products_catalog([amp(0, attributes={"origin": "Italy"}), amp(1)], median_price=5.0)
    both = concat(base, products_catalog([amp(2, attributes={"k2": "v", "origin": ""})], 5.0))
    assert list(both.attributes) == ["origin", "k2"]  # catalog-wide columns ...
    assert [both.product(r)["attributes"] for r in range(3)] == [
        {"origin": "Italy"}, {}, {"k2": "v"}]          # ... but each product returns its own


def test_an_empty_value_adds_no_column():
    catalog = products_catalog([amp(0, attributes={"note": "", "size": "L"})], median_price=0.0)
    assert list(catalog.attributes) == ["size"]


def test_select_drops_the_columns_no_selected_row_uses_and_the_result_loads(tmp_path):
    catalog = concat(products_catalog([amp(0, attributes={"keep": "a"}), amp(1)], 0.0),
                     products_catalog([amp(2, attributes={"gone": "x", "keep": "b"})], 0.0))
    live = select(catalog, np.array([1, 0]))  # amp2 deleted: its own column goes with it
    assert list(live.attributes) == ["keep"]
    assert [live.product(r)["attributes"] for r in range(2)] == [{}, {"keep": "a"}]
    live.save(tmp_path / "catalog")
    loaded = Catalog.load(tmp_path / "catalog")
    assert list(loaded.attributes) == ["keep"]
    assert [loaded.product(r) for r in range(2)] == [live.product(r) for r in range(2)]


def test_string_column_select_with_empty_rows():
    col = StringColumn.from_strings(["", "ab", "", "ç", ""])
    assert col.select(np.array([4, 3, 1, 0])).to_list() == ["", "ç", "ab", ""]
    assert col.select(np.array([0, 2])).to_list() == ["", ""]
    assert col.select(np.array([], dtype=np.int64)).to_list() == []


def test_the_milvus_store_keeps_and_returns_only_non_empty_attributes():
    product = {"id": "m1", "title": "Lamp", "price": 1.0, "attributes": {"a": "1", "b": ""}}
    row = schema.to_row(product, np.zeros(4), None)
    assert row["extra"]["attributes"] == {"a": "1"}
    written_before = {**row, "extra": {"images": [], "attributes": {"a": "1", "b": ""}}}
    assert schema.from_entity(written_before)["attributes"] == {"a": "1"}


def test_the_milvus_json_bound_counts_utf8_bytes_not_ascii_escapes():
    """12,000 CJK characters are 36,000 UTF-8 bytes (Milvus takes them) but 72,000 as \\uXXXX
    escapes: the row was refused (and the upsert answered INTERNAL)."""
    product = {"id": "cjk", "title": "Lamp", "price": 1.0, "attributes": {"note": "\u5546" * 12000}}
    assert schema.to_row(product, np.zeros(4), None)["extra"]["attributes"]["note"][:1] == "\u5546"
    with pytest.raises(schema.RowError, match="images and attributes over 65535 bytes"):
        schema.to_row({**product, "attributes": {"note": "\u5546" * 22000}}, np.zeros(4), None)


# -- what a write may do: validation -----------------------------------------------------------

def refused(products) -> str:
    with pytest.raises(InvalidArgument) as exc:
        validate_products(products, 100)
    return str(exc.value)


def test_attribute_names_are_not_empty_and_bounded():
    assert "products[0] (id 'a'): an attribute has an empty name" in refused(
        [pb.Product(id="a", title="Lamp", attributes={"": "v"})])
    assert "an attribute has an empty name" in refused(
        [pb.Product(id="a", title="Lamp", attributes={"  ": "v"})])
    long_key = "k" * (MAX_ATTRIBUTE_KEY_CHARS + 1)
    message = refused([pb.Product(id="a", title="Lamp", attributes={long_key: "v"})])
    assert f"{MAX_ATTRIBUTE_KEY_CHARS + 1} characters; at most {MAX_ATTRIBUTE_KEY_CHARS}" in message
    validate_products([pb.Product(id="a", title="Lamp",
                                  attributes={"k" * MAX_ATTRIBUTE_KEY_CHARS: "v"})], 100)


def test_the_catalog_holds_a_bounded_number_of_attribute_names():
    existing = {f"n{i}": None for i in range(MAX_ATTRIBUTE_NAMES - 2)}.keys()
    fits = [pb.Product(id="a", title="L", attributes={"x": "1", "y": "2", "n0": "3", "z": ""})]
    check_attribute_names(existing, fits)  # 2 new names: exactly at the limit; "" adds none
    over = [pb.Product(id="a", title="L", attributes={"x": "1"}),
            pb.Product(id="b", title="L", attributes={"y": "2", "w": "3"})]
    with pytest.raises(InvalidArgument) as exc:
        check_attribute_names(existing, over)
    message = str(exc.value)
    assert f"adds 3 attribute names ('w', 'x', 'y') to the {MAX_ATTRIBUTE_NAMES - 2}" in message
    assert f"at most {MAX_ATTRIBUTE_NAMES} distinct attribute names" in message


def test_image_urls_with_control_characters_are_refused():
    message = refused([pb.Product(id="a", title="Lamp", images=["http://x/1.jpg",
                                                                "http://x/2.jpg\nhttp://x/3.jpg"])])
    assert message.startswith("products[0] (id 'a'): images[1] holds a control character")
    assert "images[0]" in refused([pb.Product(id="a", title="Lamp", images=["http://x/\t.jpg"])])
    ok = pb.Product(id="a", title="Lamp", images=[" http://x/1.jpg\n", "  "])
    validate_products([ok], 100)  # surrounding whitespace is stripped, as the reader does
    assert list(clean_products([ok])[0].images) == ["http://x/1.jpg"]


def test_a_negative_zero_price_is_stored_as_zero():
    stored = clean_products([pb.Product(id="a", title="Lamp", price=-0.0)])[0]
    assert stored.HasField("price") and math.copysign(1.0, stored.price) == 1.0


# -- the product size limit counts the product as returned -------------------------------------

def big_lamp(n: int, pid: str = "big") -> pb.Product:
    return pb.Product(id=pid, title="Big lamp", categories=["C" * 19000], attributes={"a": "v" * n})


def at_the_limit(pid: str = "big") -> pb.Product:
    """The largest big_lamp whose returned form is within MAX_PRODUCT_BYTES."""
    lo, hi = 0, MAX_PRODUCT_BYTES
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if returned_product(big_lamp(mid, pid)).ByteSize() <= MAX_PRODUCT_BYTES \
            else (lo, mid - 1)
    return big_lamp(lo, pid)


def test_the_returned_form_has_category_and_price():
    p = pb.Product(id="a", title="Lamp", categories=["Home", "Lamps"], attributes={"e": ""})
    out = returned_product(p)
    assert (out.id, out.category, out.HasField("price"), dict(out.attributes)) == (
        "a", "Lamps", True, {})


def test_the_size_limit_counts_the_product_as_returned():
    largest = at_the_limit()
    assert returned_product(largest).ByteSize() == MAX_PRODUCT_BYTES
    validate_products([largest], 100)
    over = big_lamp(len(largest.attributes["a"]) + 1)
    assert over.ByteSize() < MAX_PRODUCT_BYTES  # under the limit as sent: the old check let it in
    assert f"{MAX_PRODUCT_BYTES + 1} bytes as returned, over {MAX_PRODUCT_BYTES} per product" \
        in refused([over])


def test_a_page_of_1000_products_at_the_limit_fits_one_message():
    product = returned_product(at_the_limit("x" * 1024))
    assert product.ByteSize() == MAX_PRODUCT_BYTES
    hits = [pb.Hit(product=product, score=0.5, rank=10_001 + i) for i in range(1000)]
    timing = pb.SearchTiming(embed_us=2**63, search_us=2**63, total_us=2**63)
    reply = pb.SearchResponse(hits=hits, timing=timing, query_vector_cached=True)
    page = pb.ListProductsResponse(products=[product] * 1000, next_page_token="t" * 64,
                                   total_count=2**62)
    assert max(reply.ByteSize(), page.ByteSize()) < 64 * 1024 * 1024  # the 64 MiB message limit


# -- through the FAISS store's write path (real log, snapshot and compaction) -------------------

@pytest.fixture
def faiss(tmp_path):
    catalog, _ = read_catalog(write_tiny_csv(tmp_path / "tiny.csv"))
    state = ServedState()
    state.swap(Snapshot(catalog=catalog,
                        vectors=vectors.create("flat", DIM).build(
                            FakeEmbedder().embed(catalog.search_texts())),
                        lexical=LexicalIndex().fit(catalog.search_texts()),
                        manifest={"model_name": "m", "index_type": "flat", "index_params": {}}))
    with WriteAheadLog(tmp_path / "catalog.wal") as wal:
        store = FaissStore(state, CatalogWriter(state, None, wal), wal, compactor=None)
        yield ProductWrites(StoreHolder(store), FakeEmbedder(), max_batch_products=100), state, wal


def test_an_upsert_over_the_attribute_name_limit_applies_nothing(faiss):
    writes, state, wal = faiss
    many = [pb.Product(id=f"p{i}", title="Lamp", attributes={f"k{i}_{j}": "v" for j in range(10)})
            for i in range(MAX_ATTRIBUTE_NAMES // 10)]
    writes.upsert(many, timeout=5)
    assert len(state.snapshot.catalog.attributes) == MAX_ATTRIBUTE_NAMES
    before = state.snapshot
    writes.upsert([pb.Product(id="p0", title="Lamp", attributes={"k0_0": "w"})], timeout=5)
    with pytest.raises(InvalidArgument, match=f"to the {MAX_ATTRIBUTE_NAMES} the catalog holds"):
        writes.upsert([pb.Product(id="q", title="Lamp", attributes={"new": "v"})], timeout=5)
    assert wal.last_sequence == 2 and state.snapshot.row_of("q") is None
    assert state.snapshot.catalog.attributes.keys() == before.catalog.attributes.keys()


def test_an_empty_delete_id_is_refused_before_the_log(faiss):
    writes, state, wal = faiss
    for ids in ([""], ["t01", "  "]):
        with pytest.raises(InvalidArgument, match=r"product_ids\[\d\] is empty"):
            writes.delete(ids)
    assert wal.last_sequence == 0 and state.snapshot.row_of("t01") is not None


def test_compaction_drops_the_columns_of_deleted_products(faiss, tmp_path):
    writes, state, _ = faiss
    writes.upsert([pb.Product(id=f"amp{i}", title="Amplifier lamp", attributes={f"k{i}": "v"})
                   for i in range(30)] + [pb.Product(id="keep", title="Lamp",
                                                     attributes={"size": "L"})], timeout=5)
    assert state.snapshot.catalog.product(state.snapshot.row_of("t01"))["attributes"] == {}
    writes.delete([f"amp{i}" for i in range(30)])
    snap = state.snapshot
    assert len(snap.catalog.attributes) == 31  # masked rows keep their columns until compaction
    build_dir, manifest = write_compacted(tmp_path / "data", snap)
    compacted = Snapshot.load(build_dir, manifest, {}).catalog
    assert list(compacted.attributes) == ["size"]
    assert compacted.product(compacted.row_of("keep"))["attributes"] == {"size": "L"}
