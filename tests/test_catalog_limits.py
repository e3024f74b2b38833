"""A catalog file's rows get the limits a write gets (index_service/product_limits.py): a row the
service could not hold (an id over 1,024 characters, a product over 64 KiB as returned) is
skipped and reported with its line, as a row without a title is; the cheap size bound that spares
most rows the exact measure never underestimates."""
from __future__ import annotations

import csv

import grpc
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from client.generated.recsys.v1 import index_pb2 as pb
from index_service.catalog_reader import read_catalog
from index_service.product_limits import (MAX_ID_CHARS, MAX_PRODUCT_BYTES, returned_size,
                                          size_bound)
from tests.test_index_support import TINY_HEADER, TINY_ROWS, index_stub, start_index

HEADER = ["uniq_id", "title", "description", "categories", "images", "size"]


def write(path, rows, header=HEADER):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def description_for(size: int, char: str = "é") -> str:
    """A description that makes the row's product `size` bytes as returned (ids "a".."z", title
    "T", categories "Home", no images or attributes)."""
    base = returned_size({"id": "x", "title": "T", "description": "", "price": 0.0,
                          "categories": ["Home"], "category": "Home"})
    n = (size - base - 4) // len(char.encode())  # room for the length prefix to grow
    probe = returned_size({"id": "x", "title": "T", "description": char * n, "price": 0.0,
                           "categories": ["Home"], "category": "Home"})
    text = char * n + "a" * (size - probe)  # fill the rest with ASCII
    assert returned_size({"id": "x", "title": "T", "description": text, "price": 0.0,
                          "categories": ["Home"], "category": "Home"}) == size
    return text


def test_ids_over_the_limit_are_skipped_with_their_line(tmp_path):
    rows = [["a" * MAX_ID_CHARS, "Longest id", "", "Home", "", ""],
            ["b" * (MAX_ID_CHARS + 1), "Id too long", "", "Home", "", ""],
            ["ok", "Chair", "", "Home", "", ""]]
    catalog, report = read_catalog(write(tmp_path / "ids.csv", rows))
    assert catalog.ids.to_list() == ["a" * MAX_ID_CHARS, "ok"]
    assert report.skipped_rows == [(3, f"id of {MAX_ID_CHARS + 1} characters, over {MAX_ID_CHARS}")]


def test_products_over_64_kib_as_returned_are_skipped_with_their_size(tmp_path):
    fits, over = description_for(MAX_PRODUCT_BYTES), description_for(MAX_PRODUCT_BYTES + 1)
    rows = [["x", "T", fits, "Home", "", ""], ["y", "T", over, "Home", "", ""],
            ["z", "T", "", "Home", "", "L"]]
    catalog, report = read_catalog(write(tmp_path / "big.csv", rows))
    assert catalog.ids.to_list() == ["x", "z"]
    assert returned_size(catalog.product(0)) == MAX_PRODUCT_BYTES  # the one that fits is measured as it is returned
    assert report.skipped_rows == [
        (3, f"{MAX_PRODUCT_BYTES + 1} bytes as returned, over {MAX_PRODUCT_BYTES} per product")]


def test_attributes_images_and_the_category_count_towards_the_size(tmp_path):
    third = "ü" * 11_000  # 22,000 bytes: one field fits, three do not
    rows = [["a", "T", third, "Home", "", ""],
            ["b", "T", third, "Home", f"http://x/{third}", third],
            ["c", "T", "", str(["Home", third, third]), "", ""]]  # category repeats its last level
    catalog, report = read_catalog(write(tmp_path / "parts.csv", rows))
    assert catalog.ids.to_list() == ["a"]
    assert [line for line, _ in report.skipped_rows] == [3, 4]


def test_a_skipped_later_row_of_an_id_leaves_the_earlier_one(tmp_path):
    rows = [["a", "First", "", "Home", "", ""],
            ["a", "Second", description_for(MAX_PRODUCT_BYTES + 100), "Home", "", ""]]
    catalog, report = read_catalog(write(tmp_path / "repeat.csv", rows))
    assert [catalog.product(0)["title"]] == ["First"] and report.repeated_ids == 0
    assert [line for line, _ in report.skipped_rows] == [3]


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(fields=st.fixed_dictionaries({
    "id": texts, "title": texts, "brand": texts, "description": texts, "material": texts,
    "color": texts, "levels": st.lists(texts.filter(bool), max_size=6),
    "images": st.lists(texts.filter(bool), max_size=6),
    "attributes": st.dictionaries(texts.filter(bool), texts.filter(bool), max_size=6)}))
def test_the_size_bound_never_underestimates(fields):
    levels, images, attributes = fields["levels"], fields["images"], fields["attributes"]
    product = {k: fields[k] for k in ("id", "title", "brand", "description", "material", "color")}
    product.update(price=1e300, categories=levels, category=levels[-1] if levels else "",
                   images=images, attributes=attributes)
    # What rows_within_limits counts: each field's characters, the raw breadcrumb twice, the raw
    # image list, every attribute column's name and value.
    raw_levels, raw_images = str(levels), "|".join(images)
    chars = (sum(len(product[k]) for k in ("id", "title", "brand", "description", "material",
                                            "color")) + 2 * len(raw_levels) + len(raw_images)
             + sum(len(k) + len(v) for k, v in attributes.items()))
    bound = size_bound(np.array([chars]), 7 + len(attributes))[0]
    assert returned_size(product) <= bound


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_service_serves_the_rest_and_reports_the_skipped_rows(shared_embedder, tmp_path):
    big = ["t90", "Huge table", "", description_for(MAX_PRODUCT_BYTES + 1, "ü"), "", "['Home']",
           ""]
    long_id = ["t" * (MAX_ID_CHARS + 1), "Long id lamp", "", "", "", "['Home']", ""]
    csv_path = write(tmp_path / "limits.csv", TINY_ROWS[:2] + [big, long_id] + TINY_ROWS[2:],
                     TINY_HEADER)
    data = tmp_path / "data"
    proc = start_index(shared_embedder.address, csv_path, data)
    try:
        stub = index_stub(proc)
        assert stub.GetStats(pb.GetStatsRequest(), timeout=5).product_count == len(TINY_ROWS)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetProduct(pb.GetProductRequest(product_id="t90"), timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        page = stub.ListProducts(pb.ListProductsRequest(page_size=1000), timeout=10)
        assert [p.id for p in page.products] == [row[0] for row in TINY_ROWS]
    finally:
        proc.terminate()
    report = (data / (data / "CURRENT").read_text().strip() / "build_report.txt").read_text()
    assert "rows skipped: 2" in report
    assert "line 4: " in report and f"bytes as returned, over {MAX_PRODUCT_BYTES}" in report
    assert f"line 5: id of {MAX_ID_CHARS + 1} characters" in report
