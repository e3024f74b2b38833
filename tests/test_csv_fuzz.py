"""Catalog ingestion fuzz: broken quoting, wrong encodings (latin-1, UTF-16, binary), missing
columns, 0 rows, header only, huge fields. The loader either reads the file or raises CatalogError
with one line naming the file, never anything else; `python -m index_service --catalog BAD.csv`
exits non-zero with that line and no traceback.

Examples per property: RECSYS_FUZZ_EXAMPLES (default 25), as in test_hostile_input.py.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index_service.catalog_reader import CatalogError, read_catalog
from tests.procs import ROOT, free_port

FUZZ_EXAMPLES = int(os.environ.get("RECSYS_FUZZ_EXAMPLES", "25"))
pytestmark = pytest.mark.timeout(max(600, 20 * FUZZ_EXAMPLES))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
COLUMNS = ["uniq_id", "title", "brand", "description", "price", "categories", "images", "color",
           "material", "", "title", "Title", "\ufefftitle", "id\x00"]
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le", "utf-32"]
FIELD_PIECES = ['"', '""', ",", "\n", "\r\n", "\r", "\x00", "\\", "'", "[", "]", "\u00e9", "\u20ac",
                "\U0001F642", "$", "1,040.50", "nan", "NaN", "-1", "1e400", "['Home', 'Desks']",
                "Home > Lamps", "Oak desk", " "]


def outcome(path) -> str:
    """'read', or 'refused' with a CatalogError of one line naming the file; anything else fails."""
    try:
        catalog, report = read_catalog(path)
    except CatalogError as exc:
        message = str(exc)
        assert "\n" not in message and str(path) in message, message
        return "refused"
    assert len(catalog) == report.products
    return "read"


fields = st.one_of(
    st.lists(st.sampled_from(FIELD_PIECES), max_size=6).map("".join),
    st.text(max_size=30),
    st.sampled_from([1, 200_000, 2_000_000]).map(lambda n: "x" * n),  # past csv's 128 KiB field
)


@st.composite
def csv_bytes(draw) -> bytes:
    """A file written without a CSV writer: quoting as broken as the fields make it."""
    header = draw(st.lists(st.sampled_from(COLUMNS), max_size=8))
    lines = [",".join(header)] if draw(st.integers(0, 9)) else []  # sometimes no header at all
    for _ in range(draw(st.integers(0, 5))):
        row = draw(st.lists(fields, max_size=len(header) + 2))
        if draw(st.booleans()):
            row = ['"' + f.replace('"', '""') + '"' for f in row]  # well quoted
        lines.append(",".join(row))
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)
    encoding = draw(st.sampled_from(ENCODINGS))
    return text.encode(encoding, errors="surrogatepass" if "utf" in encoding else "replace")


@FUZZ
@given(content=csv_bytes())
def test_generated_files_are_read_or_refused_in_one_line(tmp_path, content):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(content)
    outcome(path)


@FUZZ
@given(content=st.one_of(st.binary(max_size=2000),
                         st.binary(max_size=200).map(lambda b: b"title,price\n" + b)))
def test_random_bytes_are_read_or_refused_in_one_line(tmp_path, content):
    path = tmp_path / "bytes.csv"
    path.write_bytes(content)
    outcome(path)


GOOD_HEADER = "uniq_id,title,brand,price,categories\n"
GOOD_ROW = 'a1,Oak desk,WoodCo,$120.00,"[\'Home\', \'Desks\']"\n'
NAMED_CASES = {
    "empty file": b"",
    "header only": GOOD_HEADER.encode(),
    "no title column": b"uniq_id,brand\na1,WoodCo\n",
    "unterminated quote": (GOOD_HEADER + 'a1,"Oak desk,WoodCo,1,x\n').encode(),
    "too many fields": (GOOD_HEADER + GOOD_ROW + "a2,Lamp,Glow,1,x,extra,more\n").encode(),
    "latin-1": (GOOD_HEADER + "a1,Caf\u00e9 table,WoodCo,1,x\n").encode("latin-1"),
    "utf-16": (GOOD_HEADER + GOOD_ROW).encode("utf-16"),
    "binary": bytes(range(256)) * 4,
    "nul bytes": (GOOD_HEADER + "a1,Oak\x00desk,WoodCo,1,x\n").encode(),
    "huge field, row without title": (GOOD_HEADER + GOOD_ROW + "a2,," + "x" * 300_000
                                      + ",1,x\n").encode(),
    "huge title": (GOOD_HEADER + "a1," + "desk " * 400_000 + ",WoodCo,1,x\n").encode(),
    "only blank lines": b"\n\n\n",
    "header of commas": b",,,\n1,2,3\n",
    "newline in a column name": b'"a\nb",price\n1,2\n',
}


@pytest.mark.parametrize("name", NAMED_CASES)
def test_named_bad_files(tmp_path, name):
    path = tmp_path / "named.csv"
    path.write_bytes(NAMED_CASES[name])
    assert outcome(path) in ("read", "refused")


@pytest.mark.slow
@pytest.mark.parametrize("name,problem", [("latin-1", "not UTF-8"), ("header only", "no products"),
                                          ("unterminated quote", "not a valid CSV")])
def test_the_service_refuses_a_bad_catalog_in_one_line(shared_embedder, tmp_path, name, problem):
    path = tmp_path / "BAD.csv"
    path.write_bytes(NAMED_CASES[name])
    done = subprocess.run(
        [sys.executable, "-m", "index_service", "--port", str(free_port()), "--embedder",
         shared_embedder.address, "--catalog", str(path), "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("index_service: ") and str(path) in last and problem in last, done.stderr
