"""The write path's errors, in-process: a failure the caller cannot fix is FAILED_PRECONDITION, and
nothing of a refused write reaches the log or the served snapshot; ids with surrounding
whitespace and invisible titles are refused; a write without a deadline gets the write limit."""
from __future__ import annotations

import re

import numpy as np
import pytest

from client.generated.recsys.v1 import index_pb2
from index_service import vectors
from index_service.catalog_reader import read_catalog
from index_service.lexical import LexicalIndex
from index_service.snapshot import ServedState, Snapshot
from index_service.wal import WriteAheadLog
from index_service.faiss_store import FaissStore
from index_service.product_writes import ProductWrites, validate_products
from index_service.store import StoreHolder
from index_service.writes import CatalogWriter
from servekit.errors import FailedPrecondition, InvalidArgument
from tests.test_index_support import write_tiny_csv

DIM = 16


class OtherModelEmbedder:
    """Stands in for an embedder that was switched to a model of another dimension."""

    def embed(self, texts, *, timeout=None, what="texts", callers=False):
        return vectors.normalize(np.ones((len(texts), DIM * 2), dtype=np.float32))


@pytest.fixture
def state(tmp_path):
    catalog, _ = read_catalog(write_tiny_csv(tmp_path / "tiny.csv"))
    vecs = vectors.normalize(np.random.default_rng(0).normal(size=(len(catalog), DIM)))
    served = ServedState()
    served.swap(Snapshot(catalog=catalog, vectors=vectors.create("flat", DIM).build(vecs),
                         lexical=LexicalIndex().fit(catalog.search_texts()),
                         manifest={"model_name": "m", "index_type": "flat"}))
    return served


def test_vectors_of_another_dimension_are_a_failed_precondition_and_apply_nothing(state, tmp_path):
    with WriteAheadLog(tmp_path / "catalog.wal") as wal:
        store = FaissStore(state, CatalogWriter(state, None, wal), wal, compactor=None)
        writes = ProductWrites(StoreHolder(store), OtherModelEmbedder(), max_batch_products=10)
        before = state.snapshot
        with pytest.raises(FailedPrecondition, match="dimension 32, the index 16"):
            writes.upsert([index_pb2.Product(id="n1", title="Teak garden bench")], timeout=5)
        assert wal.last_sequence == 0
        assert state.snapshot is before and before.row_of("n1") is None


@pytest.mark.parametrize("product, says", [
    (index_pb2.Product(id=" n1", title="Teak bench"), "leading or trailing whitespace"),
    (index_pb2.Product(id="n1\n", title="Teak bench"), "leading or trailing whitespace"),
    (index_pb2.Product(id="n1", title="\u200b\u200b"), "title is empty (or only whitespace"),
    (index_pb2.Product(id="n1", title="\x00 "), "title is empty"),
])
def test_an_id_with_surrounding_whitespace_or_an_invisible_title_is_refused(product, says):
    """Ids match exactly (GetProduct and DeleteProducts would miss a stripped one), and a title
    needs a visible character (servekit.text)."""
    with pytest.raises(InvalidArgument, match=re.escape(says)):
        validate_products([product], 10)
    validate_products([index_pb2.Product(id="n 1", title="\u200bTeak")], 10)  # inner: fine


class RecordingEmbedder:
    """Records the limit each embed call was given."""

    def __init__(self):
        self.calls = []

    def embed(self, texts, *, timeout=None, what="texts", callers=False):
        self.calls.append((timeout, callers))
        return vectors.normalize(np.ones((len(texts), DIM), dtype=np.float32))


def test_a_write_without_a_deadline_gets_the_write_limit_not_the_query_one(state, tmp_path):
    with WriteAheadLog(tmp_path / "catalog.wal") as wal:
        store = FaissStore(state, CatalogWriter(state, None, wal), wal, compactor=None)
        embedder = RecordingEmbedder()
        writes = ProductWrites(StoreHolder(store), embedder, max_batch_products=10,
                               embed_timeout_s=300.0)
        writes.upsert([index_pb2.Product(id="n1", title="Teak garden bench")], timeout=None)
        writes.upsert([index_pb2.Product(id="n2", title="Oak garden bench")], timeout=2.5)
    assert embedder.calls == [(300.0, False), (2.5, True)]
