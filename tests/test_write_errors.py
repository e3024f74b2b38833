"""The write path's errors, in-process: a failure the caller cannot fix is FAILED_PRECONDITION, and
nothing of a refused write reaches the log or the served snapshot."""
from __future__ import annotations

import numpy as np
import pytest

from client.generated.recsys.v1 import index_pb2
from index_service import vectors
from index_service.catalog_reader import read_catalog
from index_service.lexical import LexicalIndex
from index_service.snapshot import ServedState, Snapshot
from index_service.wal import WriteAheadLog
from index_service.faiss_store import FaissStore
from index_service.product_writes import ProductWrites
from index_service.store import StoreHolder
from index_service.writes import CatalogWriter
from servekit.errors import FailedPrecondition
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
