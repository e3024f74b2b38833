"""Deadlines. Calls sent without one (a raw generated stub, no `timeout=`) are served like any
other; a deadline that leaves the embedder too little time says so.

grpcio reports such a call as ~9.2e18 seconds remaining; waiting that long raises OverflowError,
which once turned every deadline-less Embed into INTERNAL. Real processes, raw stubs, every RPC
that waits on something (the model, the embedder, the write path)."""
from __future__ import annotations

import grpc
import pytest

from client.generated.recsys.v1 import embedder_pb2, embedder_pb2_grpc
from client.generated.recsys.v1 import index_pb2 as pb
from index_service import servicer
from index_service.embedder_client import EmbedderClient
from servekit.deadlines import NO_DEADLINE_S, remaining_s
from servekit.errors import DeadlineExceeded, Unavailable
from tests.test_index_support import index_stub, start_index, write_tiny_csv

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def index(shared_embedder, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("no-deadline")
    proc = start_index(shared_embedder.address, write_tiny_csv(tmp / "tiny.csv"), tmp / "data")
    yield index_stub(proc)
    proc.kill()


@pytest.mark.slow
def test_embed_and_embed_stream_without_a_deadline(shared_embedder):
    with grpc.insecure_channel(shared_embedder.address) as channel:
        stub = embedder_pb2_grpc.EmbedderStub(channel)
        reply = stub.Embed(embedder_pb2.EmbedRequest(texts=["oak desk", "brass lamp"]))
        assert len(reply.embeddings) == 2 and len(reply.embeddings[0].values) == 384
        streamed = list(stub.EmbedStream(iter([embedder_pb2.EmbedRequest(texts=["rug"])] * 3)))
        assert [len(r.embeddings) for r in streamed] == [1, 1, 1]


@pytest.mark.slow
def test_index_rpcs_without_a_deadline(index):
    hits = index.Search(pb.SearchRequest(query="a desk for writing", k=3)).hits
    assert len(hits) == 3 and "desk" in hits[0].product.title.lower()
    similar = index.SimilarProducts(pb.SimilarProductsRequest(product_id="t05", k=2)).hits
    assert similar[0].product.id == "t06"  # the other lamp
    written = index.UpsertProducts(pb.UpsertProductsRequest(products=[
        pb.Product(id="n01", title="Linen duvet cover", description="Queen size bedding")]))
    assert written.upserted == 1
    assert index.GetProduct(pb.GetProductRequest(product_id="n01")).title == "Linen duvet cover"
    assert index.DeleteProducts(pb.DeleteProductsRequest(product_ids=["n01"])).deleted == 1
    assert index.GetStats(pb.GetStatsRequest()).product_count == 10


@pytest.mark.slow
def test_an_embedder_call_past_its_time_names_whose_limit_it_was(shared_embedder):
    """The index service's embedder client against the real embedder: 1 ms is less than any
    Embed takes. Bounded by the caller's deadline, it is DEADLINE_EXCEEDED (retrying cannot help)
    and the message says to allow the call more time; bounded by the service's own limit, it is
    UNAVAILABLE and names that limit."""
    client = EmbedderClient(shared_embedder.address, display=shared_embedder.address,
                            timeout_s=5.0, cache_size=0)
    try:
        with pytest.raises(DeadlineExceeded, match=r"did not answer in time \(query\): the call's "
                                                   r"deadline left it 1 ms; allow the call more time"):
            client.query_vector("a lamp for reading", timeout=0.0005)
        with pytest.raises(Unavailable, match=r"did not answer in time \(catalog texts\): "
                                              r"0.001 s allowed"):
            client.embed(["a lamp for reading"], timeout=0.001, what="catalog texts")
        assert client.query_vector("a lamp for reading", timeout=4.0)[0].shape == (384,)
    finally:
        client.close()


@pytest.mark.parametrize("remaining, expected", [
    (None, None), (10.0, 9.9), (1.0, 0.9), (0.25, 0.2), (0.045, 0.036), (0.005, 0.004),
    (0.0, 0.001)])
def test_the_margin_kept_from_a_deadline_shrinks_with_it(remaining, expected):
    """At most 100 ms, at most a fifth of the time left: a 45 ms deadline still leaves the work
    36 ms (a query embeds in ~7), where a fixed 50 ms left it nothing."""
    got = servicer._timeout(_Context(remaining))
    assert got == (None if expected is None else pytest.approx(expected))


class _Context:
    def __init__(self, remaining):
        self._remaining = remaining

    def time_remaining(self):
        return self._remaining


@pytest.mark.parametrize("reported, expected", [
    (9.223372035058598e18, None),  # what grpcio reports for a call without a deadline
    (NO_DEADLINE_S, None), (None, None), (2.5, 2.5), (-0.1, 0.0)])
def test_remaining_s(reported, expected):
    assert remaining_s(_Context(reported)) == expected
