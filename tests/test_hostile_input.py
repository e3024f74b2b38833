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
tried and the statuses seen are printed at the end (pytest -s, or the bench script).
"""
from __future__ import annotations

import base64
import collections
import math
import os

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.generated.recsys.v1 import embedder_pb2, embedder_pb2_grpc, index_pb2, index_pb2_grpc
from tests.procs import health_status, running_pair
from tests.test_index_support import TINY_ROWS, write_tiny_csv

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
KNOWN_IDS = [row[0] for row in TINY_ROWS]
# (service/method, status) -> calls; printed by test_zz_report.
SEEN: collections.Counter = collections.Counter()
FIRST_MESSAGE: dict = {}  # (service/method, status) -> the first message seen with it

FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])

# -- strategies -----------------------------------------------------------------------------------

MB = 1_000_000
EXTREME_TEXTS = ["", " ", "\x00", "\t\n\r", "\x00" * 1000, "a" * MB, "desk " * (MB // 5),
                 "\U0001F642" * 50_000, "\u202e\u200b\ufeff", "\ud7ff\ue000\uffff", "\x7f\x1b[31m",
                 "' OR 1=1; --", "../../etc/passwd", "%s%n%x", "null", "NaN", "t01", " t01 "]
# Any code point protobuf accepts in a string (everything but lone surrogates, sent raw below).
_chars = st.characters(blacklist_categories=("Cs",))
texts = st.one_of(st.text(_chars, max_size=60), st.sampled_from(EXTREME_TEXTS),
                  st.text(st.characters(max_codepoint=0x1F), max_size=20))
ids = st.one_of(st.sampled_from(KNOWN_IDS), texts)
INT32 = st.one_of(st.integers(-2**31, 2**31 - 1),
                  st.sampled_from([0, 1, -1, 2**31 - 1, -2**31, 1000, 1001, 10_000, 10_001]))
doubles = st.one_of(st.floats(), st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308]))
floats32 = st.one_of(st.floats(width=32), st.sampled_from([math.nan, math.inf, -math.inf]))
ENUMS = st.sampled_from([0, 1, 2, 3, 0, 1, 2, 3, 99, -1, 2**31 - 1, -2**31])
small_lists = lambda elements: st.lists(elements, max_size=4)  # noqa: E731


# Inputs a request may validly hold (still random unicode): half the requests use only these, so
# the searches, writes and encodes behind the checks run too; the other half mix in the above.
queries = st.one_of(st.text(_chars, min_size=1, max_size=60).filter(str.strip),
                    st.sampled_from(["oak desk", "lamp", "chair for the office", "\U0001F642 rug"]))
finite = st.floats(-1e6, 1e6)
known_categories = st.sampled_from(["Home", "Desks", "Lamps", "Furniture", "Home|Rugs"])


class Picker:
    """draw(valid, hostile): `valid` in a well-formed request, either one in a hostile one."""

    def __init__(self, draw):
        self.draw, self.hostile = draw, draw(st.booleans())

    def __call__(self, valid, hostile):
        return self.draw(st.one_of(valid, hostile) if self.hostile else valid)

    def maybe(self, message, name, valid, hostile):
        if self.draw(st.booleans()):
            setattr(message, name, self(valid, hostile))


@st.composite
def filters(draw):
    pick = Picker(draw)
    f = index_pb2.Filter(categories=pick(small_lists(known_categories), small_lists(texts)),
                         brands=pick(small_lists(st.sampled_from(["Woodline", "Glow"])),
                                     small_lists(texts)))
    low = pick(finite, doubles)
    pick.maybe(f, "min_price", st.just(low), doubles)
    pick.maybe(f, "max_price", st.just(low + 100), doubles)
    return f


@st.composite
def vectors(draw):
    kind = draw(st.sampled_from(["right", "wrong", "zeros"]))
    if kind == "zeros":
        return [0.0] * 384
    size = 384 if kind == "right" else draw(st.sampled_from([1, 383, 385, 4096, 100_000]))
    values = draw(st.lists(floats32, min_size=1, max_size=8))
    return (values * (size // len(values) + 1))[:size]


@st.composite
def search_requests(draw):
    pick = Picker(draw)
    r = index_pb2.SearchRequest(query=pick(queries, texts), k=pick(st.integers(1, 20), INT32),
                                offset=pick(st.integers(0, 12), INT32),
                                mode=pick(st.integers(0, 3), ENUMS))
    if draw(st.integers(0, 3)) == 0:  # by vector instead of text
        r.query = pick(st.just(""), texts)
        r.vector[:] = pick(st.lists(finite, min_size=384, max_size=384), vectors())
    if draw(st.booleans()):
        r.filter.CopyFrom(draw(filters()))
    pick.maybe(r, "min_score", st.floats(-1, 1, width=32), floats32)
    if draw(st.booleans()):
        for name in ("rrf_k", "semantic_weight", "lexical_weight"):
            pick.maybe(r.hybrid, name, st.floats(0.5, 100), doubles)
        r.hybrid.fusion = pick(st.integers(0, 2), ENUMS)
        pick.maybe(r.hybrid, "alpha", st.floats(0, 1), doubles)
        pick.maybe(r.hybrid, "candidates", st.integers(1, 500), INT32)
    return r


@st.composite
def similar_requests(draw):
    pick = Picker(draw)
    r = index_pb2.SimilarProductsRequest(product_id=pick(st.sampled_from(KNOWN_IDS), ids),
                                         k=pick(st.integers(1, 20), INT32),
                                         offset=pick(st.integers(0, 12), INT32))
    if draw(st.booleans()):
        r.filter.CopyFrom(draw(filters()))
    pick.maybe(r, "min_score", st.floats(-1, 1, width=32), floats32)
    return r


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


page_tokens = st.one_of(texts, st.builds(_token, st.one_of(
    texts, st.sampled_from(["p1:0", "p1:5", "p1:-1", "p1:99999999999999999999999", "p1:\u0663",
                            "p1:\u00b2", "p1:", "p2:1"]))))


@st.composite
def products(draw):
    pick = Picker(draw)
    p = index_pb2.Product(id=pick(st.text("abcxyz0123456789-", min_size=1, max_size=8), ids),
                          title=pick(queries, texts), brand=draw(texts), description=draw(texts),
                          categories=draw(small_lists(texts)), material=draw(texts),
                          color=draw(texts), images=draw(small_lists(texts)),
                          attributes=draw(st.dictionaries(texts, texts, max_size=3)))
    pick.maybe(p, "price", st.floats(0, 1e6), doubles)
    return p


# Big batches are built once per size (a 1,001-product batch drawn field by field is slow).
upsert_batches = st.one_of(
    small_lists(products()),
    st.sampled_from([1001, 5000]).map(lambda n: [index_pb2.Product(id=f"big{i}", title="Fuzz chair")
                                                 for i in range(n)]))
delete_batches = st.one_of(small_lists(ids), st.sampled_from([1001, 100_000]).map(
    lambda n: [f"none{i}" for i in range(n)]))


@st.composite
def embed_requests(draw):
    pick = Picker(draw)
    texts_ = pick(st.lists(queries, min_size=1, max_size=4), st.one_of(
        small_lists(texts), st.sampled_from([1025, 20_000]).map(lambda n: ["x"] * n)))
    r = embedder_pb2.EmbedRequest(texts=texts_, request_id=draw(texts))
    pick.maybe(r, "normalize", st.booleans(), st.booleans())
    pick.maybe(r, "truncate", st.just(True), st.booleans())
    return r


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
