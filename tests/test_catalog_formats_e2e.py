"""Catalog formats end to end, on real services: semicolon-, tab- and pipe-separated, JSON Lines
and Parquet copies of the sample catalog serve the same products and the same search answers as
the comma-separated original; a breadcrumb over three columns filters at every level; bad files
of each kind stop the service with one line and exit code 2."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from client.generated.recsys.v1 import index_pb2 as pb
from tests.catalog_variants import write_delimited, write_variants
from tests.procs import ROOT, free_port
from tests.test_index_support import embed_calls, index_stub, start_index

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

SAMPLE = ROOT / "data" / "products.csv"
QUERIES = [pb.SearchRequest(query="small folding computer desk", k=5),
           pb.SearchRequest(query="blue metal cafe table", k=5, mode=pb.MODE_HYBRID),
           pb.SearchRequest(query="upholstered lounge arm chair", k=5, mode=pb.MODE_LEXICAL,
                            filter=pb.Filter(categories=["Accent Chairs"]))]


def served(embedder, catalog, data_dir, *extra) -> dict:
    """What the index service serves on `catalog`: stats, every product, the QUERIES' answers,
    and the Embed calls its start made."""
    before = embed_calls(embedder)
    proc = start_index(embedder.address, catalog, data_dir, *extra)
    try:
        build_calls = embed_calls(embedder) - before
        stub = index_stub(proc)
        stats = stub.GetStats(pb.GetStatsRequest(), timeout=10)
        products = list(stub.ListProducts(pb.ListProductsRequest(page_size=1000), timeout=10).products)
        answers = [[(h.product.id, h.score) for h in stub.Search(q, timeout=60).hits] for q in QUERIES]
    finally:
        proc.terminate()
    build = data_dir / (data_dir / "CURRENT").read_text().strip()
    return {"stats": stats, "products": products, "answers": answers, "build": build,
            "embed_calls": build_calls}


def same_answers(got: list, expected: list) -> bool:
    return all([i for i, _ in g] == [i for i, _ in e]
               and np.allclose([s for _, s in g], [s for _, s in e], atol=1e-4)
               for g, e in zip(got, expected))


def test_every_format_serves_the_same_products_and_answers(shared_embedder, tmp_path):
    paths = write_variants(SAMPLE, tmp_path / "catalogs")
    original = served(shared_embedder, SAMPLE, tmp_path / "data-original")
    assert original["stats"].product_count == 246 and original["embed_calls"] > 0
    assert all(original["answers"])
    embeddings = original["build"] / "embeddings.npy"
    expected = {"semicolon": ("csv", ";"), "tab": ("csv", "\t"), "pipe": ("csv", "|"),
                "jsonl": ("jsonl", ""), "parquet": ("parquet", "")}
    for name, (kind, delimiter) in expected.items():
        # JSON Lines goes through a real build; the others import the original's vectors
        extra = () if name == "jsonl" else ("--embeddings", str(embeddings))
        got = served(shared_embedder, paths[name], tmp_path / f"data-{name}", *extra)
        assert (got["stats"].catalog_format, got["stats"].csv_delimiter) == (kind, delimiter), name
        assert got["products"] == original["products"], name
        assert same_answers(got["answers"], original["answers"]), (name, got["answers"])
        assert (got["embed_calls"] > 0) == (name == "jsonl"), name
    report = (got["build"] / "build_report.txt").read_text()
    assert "format: Parquet" in report
    semicolon = tmp_path / "data-semicolon"
    report = (semicolon / (semicolon / "CURRENT").read_text().strip() / "build_report.txt").read_text()
    assert "format: CSV, delimiter ';' (detected)" in report


LEVELS_HEADER = ["uniq_id", "title", "category", "sub category", "type", "color"]
LEVELS_ROWS = [
    ["d1", "Oak writing desk", "Home", "Furniture", "Desks", "Brown"],
    ["d2", "Walnut standing desk", "Home", "Furniture", "Desks", "Walnut"],
    ["c1", "Mesh office chair", "Home", "Furniture", "Chairs", "Black"],
    ["l1", "Ceramic table lamp", "Home", "Lighting", "Lamps", "White"],
    ["l2", "Brass floor lamp", "Home", "Lighting", "", "Gold"],
    ["p1", "Terracotta planter", "Garden", "", "Planters", "Red"],
]


def test_a_breadcrumb_over_three_columns_filters_at_every_level(shared_embedder, tmp_path):
    catalog = write_delimited(tmp_path / "levels.csv", LEVELS_HEADER, LEVELS_ROWS, ";")
    proc = start_index(shared_embedder.address, catalog, tmp_path / "data",
                       "--columns", "categories=category>sub category>type")
    try:
        stub = index_stub(proc)
        expected = {"Home": {"d1", "d2", "c1", "l1", "l2"}, "Furniture": {"d1", "d2", "c1"},
                    "Desks": {"d1", "d2"}, "Chairs": {"c1"}, "Lighting": {"l1", "l2"},
                    "Lamps": {"l1"}, "Garden": {"p1"}, "Planters": {"p1"}}
        for level, ids in expected.items():
            hits = stub.Search(pb.SearchRequest(query="something for the home", k=10,
                                                filter=pb.Filter(categories=[level])),
                               timeout=60).hits
            assert {h.product.id for h in hits} == ids, level
        products = {p.id: p for p in stub.ListProducts(pb.ListProductsRequest(), timeout=10).products}
        assert list(products["d1"].categories) == ["Home", "Furniture", "Desks"]
        assert products["d1"].category == "Desks" and products["l2"].category == "Lighting"
        assert list(products["p1"].categories) == ["Garden", "Planters"]
        assert products["d1"].color == "Brown" and not products["d1"].attributes
    finally:
        proc.terminate()


SEMICOLONS = b"uniq_id;title;description\na1;Desk;Sturdy, oak\n"
BAD = [
    ("truncated.jsonl", b'{"title": "Desk"}\n{"title": "La', (), "line 2"),
    ("array.jsonl", b'[{"title": "Desk"},\n {"title": "Lamp"}]\n', (), "JSON array"),
    ("scalar.ndjson", b'{"title": "Desk"}\n"Lamp"\n', (), "line 2 is a string"),
    ("corrupt.parquet", b"PAR1 not parquet at all PAR1", (), "not a readable Parquet file"),
    ("semicolons.csv", SEMICOLONS, ("--csv-delimiter", ","), "--csv-delimiter"),
    ("catalog.xlsx", b"PK\x03\x04 a zip", (), "unknown catalog format '.xlsx'"),
]


@pytest.mark.parametrize("name,content,extra,problem", BAD)
def test_bad_files_stop_the_service_with_one_line(shared_embedder, tmp_path, name, content, extra,
                                                  problem):
    path = tmp_path / name
    path.write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "index_service", "--port", str(free_port()), "--embedder",
         shared_embedder.address, "--catalog", str(path), "--data-dir", str(tmp_path / "data"),
         *extra], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("index_service:")]
    assert len(lines) == 1 and str(path) in lines[0] and problem in lines[0], done.stderr


def test_a_bad_delimiter_flag_is_a_usage_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "index_service", "--catalog", str(SAMPLE), "--data-dir",
         str(tmp_path / "data"), "--csv-delimiter", "colon"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith("--csv-delimiter must be auto, ',', ';', "
                                                        "tab (or \\t) or '|', got 'colon'")
