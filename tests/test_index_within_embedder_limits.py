"""The index service keeps within the embedder's limits (ModelInfo.max_chars_per_text and
.max_texts_per_request), so that neither a long product text nor a batch larger than the embedder
takes fails a build or a write: a longer text is cut (the model reads its first 256 tokens only,
so its vector does not change) and a larger batch goes in several calls. Real services: an
embedder with small limits, the index on it, and the shared embedder (no cut) as the reference."""
from __future__ import annotations

import csv

import grpc
import numpy as np
import pytest

from client.generated.recsys.v1 import embedder_pb2, embedder_pb2_grpc, index_pb2 as pb
from index_service.catalog import search_text
from index_service.embedder_client import EmbedderClient, fit_text
from servekit.errors import InvalidArgument
from tests.procs import EXACT_EMBEDDER_ARGS
from tests.test_index_support import (TINY_HEADER, TINY_ROWS, index_stub, start_embedder,
                                      start_index)

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

MAX_CHARS, MAX_TEXTS = 3000, 4
WORDS = ("solid oak frame with dovetail joints, hand rubbed oil finish, soft close drawers and "
         "brass handles; ships flat packed with tools and a printed guide. ")
LONG_DESCRIPTION = (WORDS * 120)[:15_000]  # over MAX_CHARS, under the shared embedder's 20,000


def test_fit_text_cuts_only_what_is_too_long():
    assert fit_text("a  b", None) == "a  b" and fit_text("a  b", 4) == "a  b"
    assert fit_text("a \n\t b" + "c" * 10, 8) == "a bccccc"
    assert len(fit_text(LONG_DESCRIPTION, MAX_CHARS)) == MAX_CHARS


def reference_vector(shared_embedder, text: str) -> np.ndarray:
    with grpc.insecure_channel(shared_embedder.address) as channel:
        reply = embedder_pb2_grpc.EmbedderStub(channel).Embed(
            embedder_pb2.EmbedRequest(texts=[text]), timeout=60)
    return np.array(reply.embeddings[0].values, dtype=np.float32)


def test_long_texts_and_large_batches_within_the_embedders_limits(shared_embedder, tmp_path):
    long_row = ["long1", "Oak dresser", "Woodline", LONG_DESCRIPTION, "$300.00",
                "['Home', 'Furniture', 'Dressers']", "Brown"]
    path = tmp_path / "long.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([TINY_HEADER, *TINY_ROWS, long_row])
    embedder = start_embedder(extra=(*EXACT_EMBEDDER_ARGS, "--max-chars-per-text", str(MAX_CHARS),
                                     "--max-texts-per-request", str(MAX_TEXTS)))
    index = None
    try:
        # The build sends batches larger than MAX_TEXTS, and one text over MAX_CHARS.
        index = start_index(embedder.address, path, tmp_path / "data")
        stub = index_stub(index)
        assert stub.GetStats(pb.GetStatsRequest(), timeout=5).product_count == len(TINY_ROWS) + 1
        # Its vector is the uncut text's, as an embedder without the limit makes it.
        full = search_text("Oak dresser", "Woodline", long_row[5], "", "Brown", LONG_DESCRIPTION)
        hit = stub.Search(pb.SearchRequest(vector=reference_vector(shared_embedder, full), k=1),
                          timeout=10).hits[0]
        assert hit.product.id == "long1" and hit.score > 0.9999
        # A write of more products than MAX_TEXTS, one of them over MAX_CHARS.
        products = [pb.Product(id=f"w{i}", title=f"Walnut shelf {i}", description=LONG_DESCRIPTION
                               if i == 0 else "A shelf") for i in range(MAX_TEXTS + 2)]
        reply = stub.UpsertProducts(pb.UpsertProductsRequest(products=products), timeout=120)
        assert reply.upserted == len(products)
        got = stub.GetProduct(pb.GetProductRequest(product_id="w0"), timeout=5)
        assert got.description == LONG_DESCRIPTION  # cut for the model only, stored whole
    finally:
        if index is not None:
            index.terminate()
        embedder.terminate()


def test_no_texts_is_the_embedders_invalid_argument(shared_embedder):
    client = EmbedderClient(shared_embedder.address, display="e", timeout_s=10, cache_size=1)
    try:
        client.model_info(timeout=10)
        with pytest.raises(InvalidArgument, match="the embedder rejected the texts"):
            client.embed([])
    finally:
        client.close()
