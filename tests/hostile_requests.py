"""Hypothesis strategies for tests/test_hostile_input.py: random and extreme requests to every RPC
of both services (helper, no tests). Half of each request's fields come from inputs a request may
validly hold, so the work behind the checks runs too; the other half mix in hostile ones."""
from __future__ import annotations

import base64
import math

from hypothesis import strategies as st

from client.generated.recsys.v1 import embedder_pb2, index_pb2
from tests.test_index_support import TINY_ROWS

KNOWN_IDS = [row[0] for row in TINY_ROWS]

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
    if draw(st.integers(0, 2)) == 0:  # a basket instead of one id (or as well: INVALID_ARGUMENT)
        if draw(st.booleans()):
            r.product_id = ""
        r.product_ids[:] = pick(st.lists(st.sampled_from(KNOWN_IDS), min_size=1, max_size=4),
                                st.lists(ids, max_size=120))
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
