"""Approximate search with an HNSW graph (IndexHNSWFlat, inner product).

params: m (graph degree, default 32), ef_construction (default 200), ef_search (default 128;
raised to k when k is larger).
"""
from __future__ import annotations

import faiss
import numpy as np

from .base import VectorIndex
from .flat import flat_view


class HnswIndex(VectorIndex):
    kind = "hnsw"
    approximate = True
    build_params = ("m", "ef_construction")

    def _new_index(self, vectors: np.ndarray) -> faiss.Index:
        index = faiss.IndexHNSWFlat(self.dimension, int(self.params.get("m", 32)),
                                    faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(self.params.get("ef_construction", 200))
        index.add(vectors)
        return index

    def _search_params(self, k: int, selector):
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(int(self.params.get("ef_search", 128)), k)
        if selector is not None:
            params.sel = selector
        return params

    def _stored_vectors(self) -> np.ndarray | None:
        return flat_view(self.index.storage)
