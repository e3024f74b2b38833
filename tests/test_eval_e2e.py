"""Lexical and hybrid search and `python -m client evaluate`, end to end: the real embedder and index
service on loopback, over a tiny hand-made catalog written in a temporary directory."""
import json
import subprocess
import sys

import numpy as np
import pytest

from client.recsys_client import RecsysClient
from client.types import HybridParams as ClientHybridParams
from index_service.fusion import HybridParams, rrf_scores
from index_service.lexical import LexicalIndex
from tests.procs import ROOT, ServiceProcess, free_port

pytestmark = pytest.mark.slow

BREADCRUMB = "['Home & Kitchen', 'Furniture', '{}']"
# (title, brand, description, price, short category, material, color): 3 products per category.
ROWS = [
    ("Oak Wooden Study Chair with Cushion", "Oakline", "A solid oak chair for a study table.", "$89.00", "Chairs", "Wood", "Brown"),
    ("Mesh Office Desk Chair, Adjustable", "Kestrel", "Ergonomic mesh chair with lumbar support.", "$129.99", "Chairs", "Mesh", "Black"),
    ("Upholstered Lounge Arm Chair", "Velora", "A soft velvet arm chair for the living room.", "$249.00", "Chairs", "Velvet", "Blue"),
    ("Small Folding Computer Desk", "Foldit", "A folding desk that stores flat.", "$59.99", "Desks", "Metal", "White"),
    ("Standing Desk with Electric Lift", "Liftwork", "Sit-stand computer desk with memory presets.", "$399.00", "Desks", "Steel", "Black"),
    ("Writing Desk with Drawer, Oak", "Oakline", "A compact oak writing desk with one drawer.", "$149.00", "Desks", "Wood", "Brown"),
    ("Blue Metal Cafe Table, Round", "Bistrot", "A round metal bistro table for a cafe or patio.", "$119.00", "Tables", "Metal", "Blue"),
    ("Oak Dining Table for Six", "Oakline", "An oak dining table that seats six.", "", "Tables", "Wood", "Brown"),
    ("Glass Coffee Table with Shelf", "Clearview", "A tempered glass coffee table with a lower shelf.", "$179.00", "Tables", "Glass", "Clear"),
    ("Brass Floor Lamp with Linen Shade", "Lumen", "A tall floor lamp with a linen shade.", "$99.00", "Lamps", "Brass", "Gold"),
    ("LED Desk Lamp, Dimmable", "Lumen", "A dimmable LED lamp for a desk or study table.", "$29.99", "Lamps", "Plastic", "White"),
    ("Ceramic Table Lamp, Blue", "Potters", "A blue ceramic table lamp with a fabric shade.", "$64.00", "Lamps", "Ceramic", "Blue"),
]
HEADER = ["uniq_id", "title", "brand", "description", "price", "categories", "material", "color"]
MODES = ("lexical", "hybrid")


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def recipe_texts() -> list[str]:
    """The app's search texts: title, brand, categories (raw), material, color, description."""
    return [" ".join([t, b, BREADCRUMB.format(c), m, col, d]) for t, b, d, _, c, m, col in ROWS]


@pytest.fixture(scope="module")
def services(shared_embedder, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval-e2e")
    catalog = tmp / "catalog.csv"
    lines = [",".join(HEADER)]
    for i, (title, brand, desc, price, category, material, color) in enumerate(ROWS):
        fields = [f"p{i:02d}", title, brand, desc, price, BREADCRUMB.format(category), material, color]
        lines.append(",".join(_csv_field(f) for f in fields))
    catalog.write_text("\n".join(lines) + "\n", encoding="utf-8")
    index_port = free_port()
    index = ServiceProcess("index_service", ["--port", str(index_port), "--embedder",
                                             shared_embedder.address, "--catalog", str(catalog),
                                             "--data-dir", str(tmp / "data")], index_port)
    try:
        index.wait_serving()
        yield {"index": index.address, "tmp": tmp}
    finally:
        index.terminate()


@pytest.fixture(scope="module")
def client(services):
    with RecsysClient(index=services["index"], timeout=30) as c:
        yield c


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", MODES)
def test_filters_are_exact(client, mode):
    hits = client.search("wooden table for a study", k=3, mode=mode, category="Chairs").hits
    assert len(hits) == 3 and all("Chairs" in h.product.categories for h in hits)
    hits = client.search("wooden table for a study", k=5, mode=mode, category="Chairs").hits
    assert len(hits) == 3  # only 3 chairs
    hits = client.search("oak", k=2, mode=mode, category="Furniture", brand="Lumen").hits
    assert [h.product.brand for h in hits] == ["Lumen", "Lumen"]  # no lamp says "oak": still k
    hits = client.search("blue table", k=4, mode=mode, max_price=100).hits
    assert len(hits) == 4 and all(h.product.price is not None and h.product.price <= 100 for h in hits)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    page = client.search("blue table", k=2, mode=mode, max_price=100, offset=2).hits
    assert [h.product.id for h in page] == [h.product.id for h in hits[2:]]
    assert [h.rank for h in page] == [3, 4]


@pytest.mark.timeout(300)
def test_lexical_scores_equal_the_apps_tfidf(client):
    lex = LexicalIndex().fit(recipe_texts())
    for query in ("oak desk", "blue metal cafe table", "lamp for a study table"):
        hits = client.search(query, k=len(ROWS), mode="lexical").hits
        ids = [h.product.id for h in hits]
        expected_scores, expected_rows = lex.search(query, k=len(ROWS))
        assert ids == [f"p{r:02d}" for r in expected_rows], query
        np.testing.assert_allclose([h.score for h in hits], expected_scores, atol=1e-6)
    hits = client.search("oak desk", k=12, mode="lexical", min_score=1e-9).hits
    assert 0 < len(hits) < 12 and all(h.score > 0 for h in hits)


@pytest.mark.timeout(300)
def test_hybrid_is_rrf_of_the_two_rankings(client):
    n = len(ROWS)
    for query, params in (("oak writing desk", None), ("blue lamp", HybridParams(10, 2, 0.5))):
        semantic = [int(h.product.id[1:]) for h in client.search(query, k=n).hits]
        lexical = [int(h.product.id[1:]) for h in client.search(query, k=n, mode="lexical").hits
                   if h.score > 0]
        scores, rows = rrf_scores(semantic, lexical, params or HybridParams())
        hybrid = None if params is None else ClientHybridParams(
            params.rrf_k, params.semantic_weight, params.lexical_weight)
        hits = client.search(query, k=n, mode="hybrid", hybrid=hybrid).hits
        assert [int(h.product.id[1:]) for h in hits] == rows.tolist(), query
        np.testing.assert_allclose([h.score for h in hits], scores, rtol=1e-6)


def _evaluate(index: str, out) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "client", "evaluate", "--index", index,
                           "--k", "1,3", "--out", str(out), "--timeout", "30"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)


@pytest.mark.timeout(600)
def test_evaluate_writes_consistent_deterministic_files(services):
    first, second = services["tmp"] / "eval1", services["tmp"] / "eval2"
    for out in (first, second):
        run = _evaluate(services["index"], out)
        assert run.returncode == 0, run.stderr
    assert "| semantic |" in run.stdout
    assert "%|" not in run.stderr  # no progress bar written into a pipe or a log file
    for name in ("metrics.json", "report.md", "metrics.png"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    body = json.loads((first / "metrics.json").read_text())
    assert body["products"] == 12 and body["category_products"] == 12 and body["k"] == [1, 3]
    keys = {"self_retrieval@1", "self_retrieval@3", "precision@1", "precision@3", "recall@1",
            "recall@3", "mrr@10"}
    assert set(body["modes"]) == {"semantic", "lexical", "hybrid"}
    report = (first / "report.md").read_text()
    for mode, values in body["modes"].items():
        assert set(values) == keys
        assert all(0 <= v <= 1 for v in values.values())
        row = next(line for line in report.splitlines() if line.startswith(f"| {mode} |"))
        header = next(line for line in report.splitlines() if line.startswith("| mode |"))
        table = dict(zip(header.strip("|").split("|")[1:], row.strip("|").split("|")[1:]))
        assert {k.strip(): float(v) for k, v in table.items()} == values
    # Each title is a query for its own product: the semantic and hybrid rankings must find it.
    assert body["modes"]["semantic"]["self_retrieval@3"] >= 0.9
    assert body["modes"]["hybrid"]["self_retrieval@3"] >= 0.9
    assert report.count("| 1 |") == 4 and "Blue Metal Cafe Table, Round" in report


@pytest.mark.timeout(120)
def test_evaluate_against_no_server_is_one_clear_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "client", "evaluate", "--index",
                          f"127.0.0.1:{free_port()}", "--timeout", "2", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("recsys: error:")
    assert "Traceback" not in run.stderr
