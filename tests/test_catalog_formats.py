"""Catalog formats (no services: fast): comma-, semicolon-, tab- and pipe-separated CSV, JSON Lines
and Parquet copies of the sample catalog read as the same Catalog; delimiter detection and
--csv-delimiter; JSON Lines and Parquet values; breadcrumbs over several columns."""
from __future__ import annotations

import csv
import io
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index_service.catalog_files import delimiter_option, format_of, identity
from index_service.catalog_files.base import DELIMITERS
from index_service.catalog_files.delimited import sniff
from index_service.catalog_reader import CatalogError, parse_columns_spec, read_catalog
from index_service.config import IndexConfig
from tests.catalog_variants import write_delimited, write_variants
from tests.procs import ROOT

SAMPLE = ROOT / "data" / "products.csv"
FUZZ = settings(max_examples=int(os.environ.get("RECSYS_FUZZ_EXAMPLES", "25")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
EXPECTED = {"comma": ("csv", ","), "semicolon": ("csv", ";"), "tab": ("csv", "\t"),
            "pipe": ("csv", "|"), "jsonl": ("jsonl", ""), "parquet": ("parquet", "")}


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    return write_variants(SAMPLE, tmp_path_factory.mktemp("variants"))


@pytest.fixture(scope="module")
def original():
    return read_catalog(SAMPLE)


def everything(catalog) -> list[dict]:
    return [catalog.product(i) for i in range(len(catalog))]


@pytest.mark.parametrize("name", EXPECTED)
def test_every_variant_reads_as_the_original(variants, original, name):
    catalog, report = read_catalog(variants[name])
    base, base_report = original
    assert everything(catalog) == everything(base)
    assert catalog.search_texts() == base.search_texts()
    assert catalog.ids.to_list() == base.ids.to_list() and len(catalog) == 246
    assert report.counts() == base_report.counts()
    assert report.attribute_columns == base_report.attribute_columns
    assert (report.catalog_format, report.csv_delimiter) == EXPECTED[name]
    assert identity(variants[name]) == EXPECTED[name]


@pytest.mark.parametrize("name", ["semicolon", "tab", "pipe"])
def test_a_forced_delimiter_is_used_and_said(variants, original, name):
    delimiter = EXPECTED[name][1]
    catalog, report = read_catalog(variants[name], csv_delimiter=delimiter)
    assert report.delimiter_source == "--csv-delimiter" and report.csv_delimiter == delimiter
    assert catalog.search_texts() == original[0].search_texts()


# ---- delimiter detection --------------------------------------------------------------------

@pytest.mark.parametrize("text,delimiter", [
    ('title,description\n"Desk, oak","a; b; c"\nLamp,"x;y"\n', ","),  # quoted commas, semicolons
    ("title,description\nDesk,one; two; three; four\nLamp,a;b\n", ","),  # semicolons in text
    ('title;description\n"Desk; oak";"a, b, c"\nLamp;"x,y,z"\n', ";"),
    ("title;price\nDesk, oak, small;12,50\n", ";"),  # decimal commas
    ("title\tbrand\nDesk, oak\tWoodCo\n", "\t"),
    ("title|brand|price\nDesk|WoodCo|1,5\n", "|"),
    ("title\nDesk\n", ","),  # one column: the default
    ("", ","),
    ("title;price\n", ";"),  # a header alone decides
])
def test_sniff(text, delimiter):
    assert sniff(text) == delimiter


def test_sniff_ignores_a_cut_last_record():
    text = "title;description\n" + "Desk;plain text\n" * 3 + 'Lamp;"cut, here, and'
    assert sniff(text, complete=False) == ";"


NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters='"\r\n')
CELL_PIECES = [",", ";", "\t", "|", '"', "'", " ", "\n", "\r\n", "1,5", "a; b", "x|y", "Oak desk"]


@FUZZ
@given(delimiter=st.sampled_from(DELIMITERS), quote_all=st.booleans(), data=st.data())
def test_sniff_finds_the_delimiter_a_csv_writer_used(delimiter, quote_all, data):
    """Whatever the fields hold (other delimiters, quotes, line breaks), the delimiter a CSV
    writer used is found; header names may hold other delimiters when they are quoted."""
    others = "".join(d for d in DELIMITERS if d != delimiter) if quote_all else "".join(DELIMITERS)
    name = st.text(NAME_CHARS, min_size=1, max_size=8).filter(lambda n: not set(n) & set(others))
    header = data.draw(st.lists(name, min_size=2, max_size=6, unique=True))
    cell = st.lists(st.sampled_from(CELL_PIECES), max_size=4).map("".join)
    rows = data.draw(st.lists(st.lists(cell, min_size=len(header), max_size=len(header)),
                              max_size=8))
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter,
               quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL).writerows([header, *rows])
    assert sniff(out.getvalue()) == delimiter


@FUZZ
@given(text=st.text(max_size=300), complete=st.booleans())
def test_sniff_always_answers_a_candidate(text, complete):
    assert sniff(text, complete) in DELIMITERS


@FUZZ
@given(content=st.one_of(st.binary(max_size=500),
                         st.lists(st.sampled_from(['{"title": "Desk"}', '{"title": 1}', "[]", "{",
                                                   '{"a": [1, {"b": null}]}', "", "nan", '"x"',
                                                   '{"title": "\\ud800"}']),
                                  max_size=6).map(lambda ls: "\n".join(ls).encode()),
                         st.binary(max_size=300).map(lambda b: b"PAR1" + b + b"PAR1")),
       suffix=st.sampled_from([".jsonl", ".parquet"]))
def test_other_formats_are_read_or_refused_in_one_line(tmp_path, content, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(content)
    try:
        catalog, report = read_catalog(path)
    except CatalogError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc), str(exc)
    else:
        assert len(catalog) == report.products


@pytest.mark.parametrize("text,delimiter", [
    ("auto", "auto"), (",", ","), ("comma", ","), (";", ";"), ("\t", "\t"), ("\\t", "\t"),
    ("TAB", "\t"), ("|", "|"), ("pipe", "|"), (" ; ", ";"), ("x", None), ("", None), (",;", None),
])
def test_delimiter_option(text, delimiter):
    assert delimiter_option(text) == delimiter


def test_a_bad_delimiter_flag_is_one_line():
    config = IndexConfig(catalog="c.csv", data_dir="d", csv_delimiter=":")
    assert config.problem() == "--csv-delimiter must be auto, ',', ';', tab (or \\t) or '|', got ':'"
    assert IndexConfig.from_args(["--catalog", "c.csv", "--data-dir", "d"],
                                 environ={"INDEX_CSV_DELIMITER": "tab"}).csv_delimiter == "tab"


# ---- JSON Lines and Parquet values ----------------------------------------------------------

def test_jsonl_values(tmp_path):
    path = tmp_path / "c.ndjson"
    lines = [{"uniq_id": 7, "title": "Desk", "price": 12.5, "in_stock": True, "categories":
              ["Home", "", "Desks"], "images": ["http://x/1.jpg "], "size": {"w": 1},
              "tags": ["a", "b"], "note": None},
             {"uniq_id": "b", "title": "Lamp", "price": 1e20, "extra": "only here"},
             {"uniq_id": "c", "title": "", "price": None}]
    path.write_text("\n".join(json.dumps(v) for v in lines[:2]) + "\n\n  \n"
                    + json.dumps(lines[2]) + "\n", encoding="utf-8")
    catalog, report = read_catalog(path)
    desk, lamp = catalog.product(0), catalog.product(1)
    assert desk["id"] == "7" and desk["price"] == 12.5 and lamp["price"] == 1e20
    assert desk["categories"] == ["Home", "Desks"] and desk["category"] == "Desks"
    assert desk["images"] == ["http://x/1.jpg"]
    assert desk["attributes"] == {"in_stock": "true", "size": '{"w": 1}', "tags": '["a", "b"]'}
    assert lamp["attributes"]["extra"] == "only here" and "in_stock" not in lamp["attributes"]
    assert catalog.search_text(0) == "Desk  ['Home', 'Desks']   "
    assert report.skipped_rows == [(5, "no title")] and report.rows_read == 3
    assert report.catalog_format == "jsonl" and report.csv_delimiter == ""


def test_parquet_values(tmp_path):
    table = pa.table({
        "uniq_id": pa.array([1, 2, 3], pa.int64()),
        "title": ["Desk", None, "Lamp"],
        "price": pa.array([12.5, None, 3.0]),
        "categories": pa.array([["Home", "Desks"], None, []], pa.list_(pa.string())),
        "in_stock": [True, False, None],
        "sizes": pa.array([[1, 2], None, None], pa.list_(pa.int32())),
        "added": pa.array([0, 0, 86_400_000_000], pa.timestamp("us")),
    })
    pq.write_table(table, tmp_path / "c.parquet")
    catalog, report = read_catalog(tmp_path / "c.parquet")
    desk, lamp = catalog.product(0), catalog.product(1)
    assert (desk["id"], desk["price"], desk["categories"]) == ("1", 12.5, ["Home", "Desks"])
    assert desk["attributes"] == {"in_stock": "true", "sizes": "[1, 2]",
                                  "added": "1970-01-01T00:00:00"}
    assert lamp["categories"] == [] and "in_stock" not in lamp["attributes"]
    assert lamp["price"] == 3.0 and catalog.search_text(1) == "Lamp     "
    assert report.skipped_rows == [(2, "no title")] and report.position_unit == "row"


# ---- a breadcrumb over several columns ------------------------------------------------------

def test_breadcrumb_over_columns(tmp_path):
    path = write_delimited(tmp_path / "levels.csv",
                           ["uniq_id", "title", "Main Category", "sub_category", "type", "origin"],
                           [["a", "Oak desk", "Home", "Furniture", "Desks", "IT"],
                            ["b", "Lamp", "Home", "", "Lamps", ""],
                            ["c", "Mug", "", "", "", ""]], ";")
    mapping = parse_columns_spec("categories = Main Category > sub_category > type")
    catalog, report = read_catalog(path, mapping)
    assert [catalog.product(i)["categories"] for i in range(3)] == [
        ["Home", "Furniture", "Desks"], ["Home", "Lamps"], []]
    assert [catalog.product(i)["category"] for i in range(3)] == ["Desks", "Lamps", ""]
    assert catalog.search_text(0) == "Oak desk  ['Home', 'Furniture', 'Desks']   "
    assert catalog.search_text(2) == "Mug     "
    assert report.attribute_columns == ["origin"]


def test_breadcrumb_column_errors(tmp_path):
    path = write_delimited(tmp_path / "levels.csv", ["title", "a>b", "c"], [["Desk", "x", "y"]], ",")
    catalog, _ = read_catalog(path, parse_columns_spec("categories=a>b"))  # a column named a>b
    assert catalog.product(0)["categories"] == ["x"]
    with pytest.raises(CatalogError, match=r"column 'd' \(mapped to categories, level 2\) is not "
                                           r"in the file; columns: title, a>b, c"):
        read_catalog(path, parse_columns_spec("categories=c>d"))
    with pytest.raises(ValueError, match="a column name is empty"):
        parse_columns_spec("categories=a>>b")


# ---- bad files: one line naming the file ----------------------------------------------------

SEMICOLONS = b"uniq_id;title;description\na1;Desk;Sturdy, oak\n"
BAD_FILES = [
    ("truncated.jsonl", b'{"title": "Desk"}\n{"title": "La', "auto", "line 2: Unterminated string"),
    ("array.jsonl", b'[{"title": "Desk"},\n {"title": "Lamp"}]\n', "auto", "starts with a JSON array"),
    ("array1.jsonl", b'[{"title": "Desk"}]\n', "auto", "starts with a JSON array"),
    ("scalar.jsonl", b'{"title": "Desk"}\n42\n', "auto", "line 2 is a number, not a JSON object"),
    ("empty.jsonl", b"\n\n", "auto", "holds no JSON object"),
    ("latin1.jsonl", '{"title": "Caf\u00e9"}\n'.encode("latin-1"), "auto", "not UTF-8"),
    ("deep.jsonl", b"[" * 100_000 + b"\n", "auto", "line 1"),
    ("surrogate.jsonl", b'{"title": "Desk"}\n{"title": "\\ud800"}\n', "auto", "line 2 holds"),
    ("corrupt.parquet", b"PAR1 this is not parquet PAR1", "auto", "not a readable Parquet file"),
    ("empty.parquet", b"", "auto", "not a readable Parquet file"),
    ("semicolons.csv", SEMICOLONS, ",", "not a valid CSV file with delimiter ',' (--csv-delimiter)"),
    ("one-column.csv", b"uniq_id;title\na1;Desk\n", ",", "read as CSV with delimiter ','"),
    ("ragged.csv", b"title;price\nDesk;1;2;3\n", "auto", "delimiter ';' (detected)"),
    ("catalog.xlsx", b"PK\x03\x04", "auto", "unknown catalog format '.xlsx'"),
    ("catalog", b"title\nDesk\n", "auto", "unknown catalog format '(no extension)'"),
]


@pytest.mark.parametrize("name,content,delimiter,problem", BAD_FILES)
def test_bad_files_one_line_error(tmp_path, name, content, delimiter, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CatalogError) as info:
        read_catalog(path, csv_delimiter=delimiter)
    message = str(info.value)
    assert problem in message and str(path) in message and "\n" not in message, message
    if name.endswith(".csv"):
        assert "--csv-delimiter" in message


def test_format_by_extension(tmp_path):
    assert [format_of(tmp_path / n) for n in ("a.CSV", "a.tsv", "a.NDJSON", "a.pq")] == [
        "csv", "csv", "jsonl", "parquet"]
