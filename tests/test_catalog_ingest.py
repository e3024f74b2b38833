"""Catalog ingestion: the app's recipe, ids and repeats, column mapping, breadcrumbs, bad files."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from index_service.catalog import Catalog
from index_service.catalog_reader import (CatalogError, parse_breadcrumb, parse_columns_spec,
                                          parse_images, read_catalog)
from tests.procs import IKARUS_CSV

HEADER = ["uniq_id", "title", "brand", "description", "price", "categories", "images", "color",
          "material", "origin"]


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def small_csv(tmp_path):
    rows = [
        ["a1", "Oak Desk", "WoodCo", "A sturdy desk", "$120.00", "['Home', 'Furniture', 'Desks']",
         "['http://x/1.jpg ', ' http://x/2.jpg']", "Brown", "Oak", "Italy"],
        ["b2", "Blue Lamp", "LightCo", "", "", "Home > Lighting > Lamps", "", "Blue", "", "China"],
        ["c3", "Red Rug", "", "Soft rug", "$1,040.50", "Home|Rugs", "http://x/3.jpg", "Red", "Wool", ""],
        ["d4", "Cup", "CupCo", "", "n/a", "Kitchen", "", "", "", ""],
        ["a1", "Oak Desk v2", "WoodCo", "Newer", "$99", "['Home', 'Furniture', 'Desks']", "", "", "", ""],
    ]
    return write_csv(tmp_path / "small.csv", HEADER, rows)


def test_recipe_prices_texts_and_categories(small_csv):
    catalog, report = read_catalog(small_csv)
    assert len(catalog) == 4 and report.rows_read == 5
    # median over ALL rows before repeats are dropped: parsed 120, 1040.5, 99 -> 120
    assert report.median_price == 120.0 and report.prices_missing == 2
    by_id = {catalog.ids[i]: catalog.product(i) for i in range(len(catalog))}
    assert by_id["b2"]["price"] == 120.0 and by_id["d4"]["price"] == 120.0
    assert by_id["c3"]["price"] == 1040.5
    # last row wins, placed at the id's first position
    assert catalog.ids[0] == "a1" and by_id["a1"]["title"] == "Oak Desk v2"
    assert by_id["a1"]["price"] == 99.0
    assert report.repeated_ids == 1 and report.repeated_examples == ["a1"]
    # search text: title, brand, categories (raw), material, color, description; single spaces
    row = catalog.row_of("c3")
    assert catalog.search_text(row) == "Red Rug  Home|Rugs Wool Red Soft rug"
    assert catalog.search_text(catalog.row_of("a1")) == \
        "Oak Desk v2 WoodCo ['Home', 'Furniture', 'Desks']   Newer"
    assert by_id["b2"]["categories"] == ["Home", "Lighting", "Lamps"]
    assert by_id["b2"]["category"] == "Lamps"
    assert by_id["c3"]["categories"] == ["Home", "Rugs"]
    assert by_id["d4"]["categories"] == ["Kitchen"] and by_id["d4"]["category"] == "Kitchen"
    assert by_id["c3"]["images"] == ["http://x/3.jpg"]
    assert by_id["c3"]["attributes"] == {}  # an empty value is no attribute
    assert by_id["b2"]["attributes"] == {"origin": "China"}


def test_prices_that_do_not_parse_are_missing():
    from index_service.catalog_reader import parse_prices
    import pandas as pd
    got = parse_prices(pd.Series(["$1,299.99", "1.2.3", "", "n/a", "9" * 400, "USD 5"]))
    assert got[0] == 1299.99 and got[5] == 5.0 and np.isnan(got[1:5]).all()


def test_images_stripped():
    assert parse_images("['http://a ', ' http://b']") == ["http://a", "http://b"]
    assert parse_images(" http://a | http://b ") == ["http://a", "http://b"]
    assert parse_images("") == []


@pytest.mark.parametrize("raw,levels", [
    ("['Home & Kitchen', 'Bookcases, Cabinets & Shelves', 'Bookcases']",
     ["Home & Kitchen", "Bookcases, Cabinets & Shelves", "Bookcases"]),
    ("Home > Furniture > Chairs", ["Home", "Furniture", "Chairs"]),
    ("Home|Furniture", ["Home", "Furniture"]),
    ("Chairs, Stools", ["Chairs, Stools"]),
    ("[not a list", ["[not a list"]),
    ("", []),
])
def test_breadcrumbs(raw, levels):
    assert parse_breadcrumb(raw) == levels


def test_missing_columns_are_empty_and_ids_hash_when_no_id_column(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["title", "price"], [["Chair", "10"], ["Table", "x"],
                                                                  ["Chair", "10"]])
    catalog, report = read_catalog(path)
    # identical rows hash to the same id: one product, one repeat
    assert len(catalog) == 2 and report.repeated_ids == 1
    assert "hash" in report.ids_from
    assert len(catalog.ids[0]) == 16 and catalog.ids[0] != catalog.ids[1]
    again, _ = read_catalog(path)
    assert again.ids.to_list() == catalog.ids.to_list()  # stable
    assert catalog.search_text(0) == "Chair     "
    assert catalog.product(1)["price"] == 10.0  # median of the parsed prices


def test_column_mapping(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["item_id", "name", "short_description", "category",
                                          "cost", "rating"],
                     [["x1", "Sofa", "Comfy", "Living > Sofas", "$300", "4.5"]])
    mapping = parse_columns_spec("id=item_id,title=name,description=short_description,"
                                 "categories=category,price=cost")
    catalog, _ = read_catalog(path, mapping)
    product = catalog.product(0)
    assert product["id"] == "x1" and product["title"] == "Sofa" and product["description"] == "Comfy"
    assert product["categories"] == ["Living", "Sofas"] and product["price"] == 300.0
    assert product["attributes"] == {"rating": "4.5"}


def test_column_mapping_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown field 'colour'"):
        parse_columns_spec("colour=c")
    with pytest.raises(ValueError, match="FIELD=COLUMN"):
        parse_columns_spec("title")
    path = write_csv(tmp_path / "m.csv", ["title"], [["Sofa"]])
    with pytest.raises(CatalogError, match="'name' \\(mapped to title\\) is not in the file"):
        read_catalog(path, parse_columns_spec("title=name"))


def test_rows_without_title_are_skipped_with_line_numbers(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text('uniq_id,title,description\n'
                    'a,Chair,"two\nlines"\n'
                    'b,,no title here\n'
                    '\n'
                    'c,   ,blank title\n'
                    'd,Desk,ok\n', encoding="utf-8")
    catalog, report = read_catalog(path)
    assert catalog.ids.to_list() == ["a", "d"]
    assert report.skipped_rows == [(4, "no title"), (6, "no title")]


@pytest.mark.parametrize("content,problem", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\xfa binary", "not UTF-8"),
    (b'name,price\n"Chair",10\n', "no title column"),
    (b'title,price\nChair,10\nDesk,1,2,3\n', "not a valid CSV"),
])
def test_bad_files_one_line_error(tmp_path, content, problem):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(CatalogError, match=problem) as info:
        read_catalog(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(CatalogError, match="no such file"):
        read_catalog(tmp_path / "nope.csv")


def test_save_load_roundtrip(small_csv, tmp_path):
    catalog, _ = read_catalog(small_csv)
    catalog.save(tmp_path / "cat")
    loaded = Catalog.load(tmp_path / "cat")
    assert [loaded.product(i) for i in range(len(loaded))] == \
           [catalog.product(i) for i in range(len(catalog))]
    assert loaded.search_texts() == catalog.search_texts()
    assert loaded.row_of("c3") == catalog.row_of("c3") and loaded.row_of("zz") is None


@pytest.mark.skipif(not IKARUS_CSV.exists(), reason=f"shared catalog {IKARUS_CSV} is absent")
def test_ikarus_counts():
    catalog, report = read_catalog(IKARUS_CSV)
    assert report.rows_read == 312 and len(catalog) == 305 and report.repeated_ids == 7
    assert report.prices_missing == 97 and not report.skipped_rows
    assert report.attribute_columns == ["manufacturer", "package_dimensions", "country_of_origin"]
    levels = {level for i in range(len(catalog)) for level in catalog.product(i)["categories"]}
    assert "Bookcases, Cabinets & Shelves" in levels
    assert all(not u.startswith(" ") and not u.endswith(" ")
               for i in range(len(catalog)) for u in catalog.product(i)["images"])
    assert np.isfinite(catalog.price).all()
