"""Hostile input, property-based (hypothesis): random and extreme requests to EVERY RPC of both real
services. Every answer is OK or a documented status, never UNKNOWN or INTERNAL, and both services
are still SERVING afterwards.

Requests: random unicode with control characters, 1 MB strings, huge and negative k / offset /
page_size, NaN and infinite prices, scores and vectors, unknown enum values, empty and enormous
batches, vectors of the wrong dimension, forged page tokens, streams of bad requests, and raw
bytes that are not a valid message at all (invalid UTF-8 in a string field included: the one
input protobuf's Python API cannot build, so we send the bytes ourselves). Each call goes with a
roomy deadline, a tiny one, or none at all (a raw stub without `timeout=`).

The number of examples per RPC is FUZZ_EXAMPLES (env RECSYS_FUZZ_EXAMPLES, default 25: about a
minute on 2 cores); `python -m bench.fuzz --examples N` runs the same properties longer. The cases
tried and the statuses seen are printed at the end (pytest -s, or the bench script). The
strategies that draw the requests: tests/hostile_requests.py.
"""
from __future__ import annotations

import collections
import os

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.generated.recsys.v1 import embedder_pb2, embedder_pb2_grpc, index_pb2, index_pb2_grpc
from tests.hostile_requests import (INT32, MB, delete_batches, embed_requests, ids, page_tokens,
                                    search_requests, similar_requests, upsert_batches)
from tests.procs import health_status, running_pair
from tests.test_index_support import write_tiny_csv

FUZZ_EXAMPLES = int(os.environ.get("RECSYS_FUZZ_EXAMPLES", "25"))
pytestmark = [pytest.mark.timeout(max(600, 20 * FUZZ_EXAMPLES)), pytest.mark.slow]
CALL_TIMEOUT_S = 30.0
# The deadline each fuzzed call is sent with: mostly a roomy one, sometimes none at all (a raw stub
# without timeout=, which grpcio reports to the server as ~9.2e18 s left) or one that passes while
# the call is in flight.
deadlines = st.sampled_from([CALL_TIMEOUT_S, CALL_TIMEOUT_S, None, 0.005])
DOCUMENTED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
              grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE,
              grpc.StatusCode.DEADLINE_EXCEEDED}
EMBEDDER, INDEX = "recsys.v1.Embedder", "recsys.v1.Index"
# (service/method, status) -> calls; printed by test_zz_report.
SEEN: collections.Counter = collections.Counter()
FIRST_MESSAGE: dict = {}  # (service/method, status) -> the first message seen with it

FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])

# -- the services --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def services(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    with running_pair(write_tiny_csv(tmp / "tiny.csv"), tmp / "data") as pair:
        yield pair


@pytest.fixture(scope="module")
def channels(services):
    embedder, index = services
    options = [("grpc.max_send_message_length", 256 << 20),
               ("grpc.max_receive_message_length", 256 << 20)]
    with grpc.insecure_channel(embedder.address, options) as e, \
            grpc.insecure_channel(index.address, options) as i:
        yield e, i


def check(method: str, call) -> grpc.StatusCode:
    """Make the call; record and return its status; fail on an undocumented one."""
    try:
        reply = call()
        if hasattr(reply, "__iter__") and not hasattr(reply, "ListFields"):
            list(reply)  # a stream: read every answer
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as exc:
        code, details = exc.code(), exc.details()
    SEEN[(method, code.name)] += 1
    FIRST_MESSAGE.setdefault((method, code.name), (details or "")[:160])
    assert code in DOCUMENTED, f"{method} answered {code.name}: {details}"
    assert code == grpc.StatusCode.OK or details, f"{method}: {code.name} without a message"
    # A status the server could not send arrives as "Stream removed" (UNKNOWN/INTERNAL); the same
    # words with DEADLINE_EXCEEDED are the client's own, when the deadline passed mid-send.
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED or "Stream removed" not in details, \
        f"{method}: the status was lost: {details}"
    return code


def _index(channels):
    return index_pb2_grpc.IndexStub(channels[1])


def _embedder(channels):
    return embedder_pb2_grpc.EmbedderStub(channels[0])


# -- the properties --------------------------------------------------------------------------------

@FUZZ
@given(request=search_requests(), deadline=deadlines)
def test_search(channels, deadline, request):
    check("Index/Search", lambda: _index(channels).Search(request, timeout=deadline))


@FUZZ
@given(request=similar_requests(), deadline=deadlines)
def test_similar_products(channels, deadline, request):
    check("Index/SimilarProducts",
          lambda: _index(channels).SimilarProducts(request, timeout=deadline))


@FUZZ
@given(product_id=ids, deadline=deadlines)
def test_get_product(channels, deadline, product_id):
    check("Index/GetProduct", lambda: _index(channels).GetProduct(
        index_pb2.GetProductRequest(product_id=product_id), timeout=deadline))


@FUZZ
@given(page_size=INT32, page_token=page_tokens, deadline=deadlines)
def test_list_products(channels, deadline, page_size, page_token):
    request = index_pb2.ListProductsRequest(page_size=page_size, page_token=page_token)
    check("Index/ListProducts", lambda: _index(channels).ListProducts(request, timeout=deadline))


@FUZZ
@given(batch=upsert_batches, deadline=deadlines)
def test_upsert_products(channels, deadline, batch):
    request = index_pb2.UpsertProductsRequest(products=batch)
    check("Index/UpsertProducts",
          lambda: _index(channels).UpsertProducts(request, timeout=deadline))


@FUZZ
@given(batch=delete_batches, deadline=deadlines)
def test_delete_products(channels, deadline, batch):
    batch = [i for i in batch if i not in ("t01", "t02")]  # keep two products for the checks
    request = index_pb2.DeleteProductsRequest(product_ids=batch)
    check("Index/DeleteProducts",
          lambda: _index(channels).DeleteProducts(request, timeout=deadline))


@FUZZ
@given(request=embed_requests(), deadline=deadlines)
def test_embed(channels, deadline, request):
    check("Embedder/Embed", lambda: _embedder(channels).Embed(request, timeout=deadline))


@FUZZ
@given(requests=st.lists(embed_requests(), max_size=4), deadline=deadlines)
def test_embed_stream(channels, deadline, requests):
    check("Embedder/EmbedStream",
          lambda: _embedder(channels).EmbedStream(iter(requests), timeout=deadline))


@settings(max_examples=3, deadline=None)
@given(st.just(None))
def test_get_model_info_and_stats(channels, _):
    check("Embedder/GetModelInfo", lambda: _embedder(channels).GetModelInfo(
        embedder_pb2.GetModelInfoRequest(), timeout=CALL_TIMEOUT_S))
    check("Index/GetStats", lambda: _index(channels).GetStats(index_pb2.GetStatsRequest(),
                                                              timeout=CALL_TIMEOUT_S))


RAW_METHODS = [f"/{INDEX}/{m}" for m in ("Search", "SimilarProducts", "GetProduct", "ListProducts",
                                          "UpsertProducts", "DeleteProducts", "GetStats")] + \
              [f"/{EMBEDDER}/{m}" for m in ("Embed", "GetModelInfo")]
# Field 1 (a string in every request above that has one) holding invalid UTF-8: a lone surrogate
# as CESU bytes, a truncated sequence, an overlong encoding.
BAD_UTF8 = [b"\x0a\x03\xed\xa0\x80", b"\x0a\x02\xe2\x82", b"\x0a\x02\xc0\xaf"]
raw_payloads = st.one_of(st.sampled_from(BAD_UTF8), st.binary(max_size=64))


@FUZZ
@given(method=st.sampled_from(RAW_METHODS), payload=raw_payloads, deadline=deadlines)
def test_raw_bytes_that_are_not_a_valid_request(channels, deadline, method, payload):
    channel = channels[0] if EMBEDDER in method else channels[1]
    call = channel.unary_unary(method)  # bytes in, bytes out: no client-side serialization
    check(method.split(".v1.")[1], lambda: call(payload, timeout=deadline))


@FUZZ
@given(payloads=st.lists(raw_payloads, min_size=1, max_size=3), deadline=deadlines)
def test_raw_bytes_on_the_stream(channels, deadline, payloads):
    call = channels[0].stream_stream(f"/{EMBEDDER}/EmbedStream")
    check("Embedder/EmbedStream (raw)", lambda: call(iter(payloads), timeout=deadline))


def test_one_megabyte_in_every_string_field(channels):
    """Fixed cases, tried on every run: a 1 MB string wherever a request holds one (a message that
    quoted it would not fit in the status header)."""
    big = "\U0001F642" * (MB // 4)  # 1 MB of UTF-8, 4 bytes a character: the worst to quote
    index, embedder = _index(channels), _embedder(channels)
    OK, INVALID, NOT_FOUND = (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT,
                              grpc.StatusCode.NOT_FOUND)
    cases = {
        "Index/GetProduct": (index.GetProduct, index_pb2.GetProductRequest(product_id=big),
                             NOT_FOUND),
        "Index/SimilarProducts": (index.SimilarProducts,
                                  index_pb2.SimilarProductsRequest(product_id=big, k=3), NOT_FOUND),
        "Index/Search": (index.Search, index_pb2.SearchRequest(query=big, k=3), INVALID),
        "Index/Search filter": (index.Search, index_pb2.SearchRequest(
            query="desk", k=3, filter=index_pb2.Filter(categories=[big], brands=[big])), OK),
        "Index/ListProducts": (index.ListProducts, index_pb2.ListProductsRequest(page_token=big),
                               INVALID),
        "Index/UpsertProducts": (index.UpsertProducts, index_pb2.UpsertProductsRequest(
            products=[index_pb2.Product(id=big, title="x")]), INVALID),
        "Index/UpsertProducts title": (index.UpsertProducts, index_pb2.UpsertProductsRequest(
            products=[index_pb2.Product(id="big-title", title=big)]), INVALID),
        "Index/UpsertProducts attributes": (index.UpsertProducts, index_pb2.UpsertProductsRequest(
            products=[index_pb2.Product(id="big-attr", title="x", attributes={"a": big},
                                        images=[big])]), INVALID),
        "Index/DeleteProducts": (index.DeleteProducts,
                                 index_pb2.DeleteProductsRequest(product_ids=[big]), OK),
        "Embedder/Embed": (embedder.Embed, embedder_pb2.EmbedRequest(texts=[big]), INVALID),
        "Embedder/Embed request_id": (embedder.Embed, embedder_pb2.EmbedRequest(
            texts=["lamp"], request_id=big), OK),
    }
    for method, (rpc, request, expected) in cases.items():
        assert check(method, lambda: rpc(request, timeout=CALL_TIMEOUT_S)) == expected, method


def test_zz_both_services_still_serve_and_report(services, channels):
    embedder, index = services
    assert health_status(embedder.address) == "SERVING"
    assert health_status(index.address) == "SERVING"
    reply = _index(channels).Search(index_pb2.SearchRequest(query="oak desk", k=1), timeout=30)
    assert len(reply.hits) == 1
    total = sum(SEEN.values())
    by_status = collections.Counter()
    for (_, code), n in SEEN.items():
        by_status[code] += n
    print(f"\nhostile input: {total} cases over {len({m for m, _ in SEEN})} RPCs; statuses: "
          + ", ".join(f"{code} {n}" for code, n in by_status.most_common()))
    for (method, code), n in sorted(SEEN.items()):
        print(f"  {method:32s} {code:20s} {n:5d}  {FIRST_MESSAGE[(method, code)]}")
    assert total > 0
