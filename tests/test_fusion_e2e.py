"""Weighted fusion and `recsys evaluate --sweep-fusion` end to end: the real embedder and an index
service on our bare-title catalog (data/product_lines.csv, mapped with --columns), started with
--hybrid-fusion weighted --hybrid-alpha 0.3."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import grpc
import numpy as np
import pytest

from client.errors import InvalidArgumentError
from client.fusion_sweep import PRECISION_KEY, hybrid_names
from client.generated.recsys.v1 import index_pb2 as pb
from client.recsys_client import RecsysClient
from client.types import HybridParams
from index_service.fusion import weighted_scores
from tests.procs import ROOT, ServiceProcess, free_port
from tests.test_index_support import index_stub, status_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CATALOG = ROOT / "data" / "product_lines.csv"
COLUMNS = "id=sku,title=name,brand=maker,description=text,price=cost,categories=category_path,color=finish"
QUERIES = ["HALVDAN", "a sofa for a small living room", "SKÄRHOLM corner sofa", "oak"]


@pytest.fixture(scope="module")
def index(shared_embedder, tmp_path_factory):
    port = free_port()
    proc = ServiceProcess("index_service", [
        "--port", str(port), "--embedder", shared_embedder.address, "--catalog", str(CATALOG),
        "--columns", COLUMNS, "--data-dir", str(tmp_path_factory.mktemp("lines-data")),
        "--hybrid-fusion", "weighted", "--hybrid-alpha", "0.3"], port)
    try:
        yield proc.wait_serving(300)
    finally:
        proc.terminate()


@pytest.fixture(scope="module")
def client(index):
    with RecsysClient(index=index.address, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def rows(client):
    """product id -> catalog row (the FAISS store's ranking keys: the listing's order)."""
    return {p.id: i for i, p in enumerate(client.list_products(page_size=1000))}


def test_stats_report_the_flags(client):
    stats = client.stats()
    assert (stats.hybrid_fusion, stats.hybrid_alpha, stats.hybrid_candidates) == ("weighted", 0.3, 0)
    assert stats.product_count == 209


def _ranking(result, rows) -> tuple[list[int], list[float]]:
    return [rows[h.product.id] for h in result], [h.score for h in result]


@pytest.mark.parametrize("query", QUERIES)
def test_weighted_hybrid_is_the_fusion_of_the_two_rankings(client, rows, query):
    n = len(rows)
    sem_rows, sem_scores = _ranking(client.search(query, k=n), rows)
    lexical = [h for h in client.search(query, k=n, mode="lexical") if h.score > 0]
    lex_rows, lex_scores = _ranking(lexical, rows)
    for alpha in (0.3, 0.75):
        scores, expected = weighted_scores(sem_rows, sem_scores, lex_rows, lex_scores, alpha)
        got = client.search(query, k=n, mode="hybrid",
                            hybrid=HybridParams(fusion="weighted", alpha=alpha))
        assert _ranking(got, rows)[0] == expected.tolist(), (query, alpha)
        np.testing.assert_allclose([h.score for h in got], scores, atol=1e-5)
        assert all(0 <= h.score <= 1 for h in got)
    # the service's default (--hybrid-fusion weighted --hybrid-alpha 0.3)
    default = client.search(query, k=20, mode="hybrid")
    weighted = client.search(query, k=20, mode="hybrid", hybrid=HybridParams(alpha=0.3))
    assert default.ids == weighted.ids
    rrf = client.search(query, k=20, mode="hybrid", hybrid=HybridParams(fusion="rrf"))
    assert max(h.score for h in rrf) < 0.05  # RRF's scale: 2 / 61 at most


@pytest.mark.parametrize("query", QUERIES)
def test_alpha_1_and_0_give_the_single_modes_orders(client, rows, query):
    n = len(rows)
    for alpha, mode in ((1.0, "semantic"), (0.0, "lexical")):
        hybrid = client.search(query, k=n, mode="hybrid",
                               hybrid=HybridParams(fusion="weighted", alpha=alpha))
        assert hybrid.ids == client.search(query, k=n, mode=mode).ids, (query, mode)


def test_filters_paging_and_min_score_as_for_rrf(client):
    weighted = HybridParams(fusion="weighted", alpha=0.5)
    whole = client.search("oak table", k=20, mode="hybrid", hybrid=weighted,
                          category="Dining tables")
    assert len(whole) == 6 and all("Dining tables" in h.product.categories for h in whole)
    page = client.search("oak table", k=3, offset=2, mode="hybrid", hybrid=weighted,
                         category="Dining tables")
    assert page.ids == whole.ids[2:5] and [h.rank for h in page] == [3, 4, 5]
    cut = client.search("oak table", k=20, mode="hybrid", hybrid=weighted, min_score=0.5)
    assert cut.ids and all(h.score >= 0.5 for h in cut)
    assert cut.ids == client.search("oak table", k=len(cut), mode="hybrid", hybrid=weighted).ids
    deep = client.search("oak table", k=5, mode="hybrid", hybrid=HybridParams(candidates=3))
    assert len(deep) == 5  # raised to k
    for fusion in ("rrf", "weighted"):  # pages of one k and candidates: one fused list
        set_depth = HybridParams(fusion=fusion, candidates=6)
        pages = [client.search("wooden chair", k=4, offset=offset, mode="hybrid",
                               hybrid=set_depth).ids for offset in range(0, 16, 4)]
        joined = [pid for page in pages for pid in page]
        assert len(joined) == len(set(joined)) and 6 <= len(joined) <= 12  # the lists' union
        assert not pages[-1]


@pytest.mark.parametrize("hybrid, fragment", [
    (HybridParams(fusion="weighted", alpha=1.5), "hybrid.alpha must be a number from 0 to 1"),
    (HybridParams(alpha=-0.01), "hybrid.alpha"), (HybridParams(alpha=math.nan), "hybrid.alpha"),
    (HybridParams(fusion="rrf", alpha=7), "hybrid.alpha"),
    (HybridParams(candidates=0), "hybrid.candidates"),
    (HybridParams(candidates=100_001), "hybrid.candidates"),
])
def test_bad_hybrid_params_are_invalid_argument(client, hybrid, fragment):
    with pytest.raises(InvalidArgumentError, match=fragment.replace(".", r"\.")):
        client.search("desk", k=5, mode="hybrid", hybrid=hybrid)


def test_an_unknown_fusion_value_is_invalid_argument(index):
    stub = index_stub(index)
    code, details = status_of(lambda: stub.Search(pb.SearchRequest(
        query="desk", k=5, mode=pb.MODE_HYBRID, hybrid=pb.HybridParams(fusion=5)), timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "fusion 5 is not a Fusion" in details


def test_sweep_fusion_end_to_end(index, tmp_path):
    out = tmp_path / "sweep"
    run = subprocess.run([sys.executable, "-m", "client", "evaluate", "--index", index.address,
                          "--k", "5", "--sweep-fusion", "--out", str(out), "--timeout", "30"],
                         cwd=ROOT, capture_output=True, text=True, timeout=500)
    assert run.returncode == 0, run.stderr[-3000:]
    body = json.loads((out / "fusion_sweep.json").read_text())
    assert set(body) >= {"best", "flags", "served", "split", "tune", "report", "report_sweep"}
    assert body["served"] == "weighted, alpha 0.3"
    assert (body["split"]["tune_products"], body["split"]["report_products"]) == (105, 104)
    tune = body["tune"]
    assert set(tune) == {"semantic", "lexical", "hybrid", "rrf", "weighted"}
    assert list(tune["weighted"]) == [f"{i / 10:.1f}" for i in range(11)]
    # `best` is the hybrid setting with the highest precision@5 on the tuning half
    by_name = {"rrf": tune["rrf"], **{f"weighted@{a}": v for a, v in tune["weighted"].items()}}
    assert set(by_name) == set(hybrid_names())
    best_name = "rrf" if body["best"]["fusion"] == "rrf" else f"weighted@{body['best']['alpha']:.1f}"
    assert by_name[best_name][PRECISION_KEY] == max(v[PRECISION_KEY] for v in by_name.values())
    assert body["report"]["hybrid_best"] == (body["report_sweep"]["rrf"] if best_name == "rrf" else
                                             body["report_sweep"]["weighted"][best_name[9:]])[PRECISION_KEY]
    # alpha 0 and 1 are the single modes, and "hybrid" (served) is weighted 0.3
    assert tune["weighted"]["0.0"] == tune["lexical"] and tune["weighted"]["1.0"] == tune["semantic"]
    assert tune["hybrid"] == tune["weighted"]["0.3"]
    assert f"start the index service with: {body['flags']}" in run.stdout
    assert "## Fusion sweep" in (out / "report.md").read_text()
    assert (out / "fusion_sweep.png").read_bytes().startswith(b"\x89PNG")
