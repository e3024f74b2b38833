"""Per-request vector search parameters (VectorSearchParams) over gRPC, against real services.

The index is a deliberately poor HNSW graph (M 4, efConstruction 8, efSearch 1) over synthetic
embedding-like vectors imported with --embeddings, so that the default search misses some of the
exact top 10: `exact` must then return numpy's exact ranking, and a larger `hnsw_ef` must find more
of it."""
from __future__ import annotations

import grpc
import numpy as np
import pytest

from bench import synthetic
from client import InvalidArgumentError, RecsysClient, SearchParams
from client.generated.recsys.v1 import index_pb2, index_pb2_grpc
from tests.procs import running_pair

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
N, K = 3000, 10


@pytest.fixture(scope="module")
def served(shared_embedder, tmp_path_factory):
    work = tmp_path_factory.mktemp("params")
    csv_path = synthetic.write_catalog(work / "catalog.csv", N)
    npy = synthetic.LowRankVectors().write(work / "vectors.npy", N)
    vectors = np.load(npy)
    flags = ["--embeddings", str(npy), "--index-type", "hnsw", "--hnsw-m", "4",
             "--hnsw-ef-construction", "8", "--hnsw-ef-search", "1"]
    with running_pair(csv_path, work / "data", index_args=flags,
                      embedder=shared_embedder) as (_, index):
        with grpc.insecure_channel(index.address) as channel:
            yield index_pb2_grpc.IndexStub(channel), index.address, vectors


def _rows(reply) -> list[int]:
    return [int(h.product.id.rsplit("-", 1)[1]) for h in reply.hits]


def _search(stub, query, params=None, k=K):
    request = index_pb2.SearchRequest(vector=query.tolist(), k=k)
    if params is not None:
        request.params.CopyFrom(params)
    return stub.Search(request, timeout=30)


def _recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth.tolist())]))


def test_exact_returns_the_exact_ranking_where_the_default_search_misses(served):
    stub, _, vectors = served
    queries = synthetic.LowRankVectors().queries(20)
    truth = synthetic.exact_top_k(vectors, queries, K)
    default = [_rows(_search(stub, q)) for q in queries]
    exact = [_rows(_search(stub, q, index_pb2.VectorSearchParams(exact=True))) for q in queries]
    assert _recall(default, truth) < 0.9  # the poor graph misses: the test can tell the two apart
    assert exact == truth.tolist()
    wider = [_rows(_search(stub, q, index_pb2.VectorSearchParams(hnsw_ef=512))) for q in queries]
    assert _recall(wider, truth) > _recall(default, truth) + 0.05


def test_a_parameter_of_another_index_type_is_ignored(served):
    stub, _, vectors = served
    query = synthetic.LowRankVectors().queries(1)[0]
    assert _rows(_search(stub, query, index_pb2.VectorSearchParams(ivf_nprobe=64))) == \
        _rows(_search(stub, query))


@pytest.mark.parametrize("params, field", [
    (index_pb2.VectorSearchParams(hnsw_ef=0), "params.hnsw_ef"),
    (index_pb2.VectorSearchParams(hnsw_ef=5000), "params.hnsw_ef"),
    (index_pb2.VectorSearchParams(ivf_nprobe=-3), "params.ivf_nprobe"),
])
def test_out_of_range_parameters_are_invalid_argument(served, params, field):
    stub, _, vectors = served
    with pytest.raises(grpc.RpcError) as err:
        _search(stub, vectors[0], params)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub.SimilarProducts(index_pb2.SimilarProductsRequest(product_id="syn-0000001", k=3,
                                                              params=params), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_client_similar_exact_with_a_filter(served):
    _, address, vectors = served
    with RecsysClient(index=address) as client:
        found = client.similar("syn-0000007", k=5, max_price=150.0,
                               params=SearchParams(exact=True))
        prices = {h.product.id: h.product.price for h in found.hits}
        assert len(found.hits) == 5 and all(p <= 150.0 for p in prices.values())
        scores = vectors @ vectors[7]
        cheap = [client.get(f"syn-{i:07d}").price <= 150.0 for i in np.argsort(-scores)[1:40]]
        expected = [f"syn-{i:07d}" for i, ok in zip(np.argsort(-scores)[1:40], cheap) if ok][:5]
        assert [h.product.id for h in found.hits] == expected
        with pytest.raises(InvalidArgumentError, match="hnsw_ef"):
            client.search(vector=vectors[0].tolist(), params=SearchParams(hnsw_ef=0))
