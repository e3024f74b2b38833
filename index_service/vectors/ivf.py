"""Approximate search with an inverted file (IndexIVFFlat, inner product).

params: nlist (clusters; 0 = 4 * sqrt(N), at most N / 39), nprobe (clusters visited, default 16).
The vectors for exact scans come from embeddings.npy (memory-mapped), not from the index.
"""
from __future__ import annotations

import math

import faiss
import numpy as np

from .base import VectorIndex


class IvfIndex(VectorIndex):
    kind = "ivf"
    approximate = True
    build_params = ("nlist",)

    def _new_index(self, vectors: np.ndarray) -> faiss.Index:
        n = len(vectors)
        nlist = int(self.params.get("nlist", 0)) or int(4 * math.sqrt(max(n, 1)))
        nlist = max(1, min(nlist, n // 39 if n >= 39 else 1))
        quantizer = faiss.IndexFlatIP(self.dimension)
        index = faiss.IndexIVFFlat(quantizer, self.dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.add(vectors)
        self._quantizer = quantizer  # keep the Python wrapper alive with the index
        return index

    def _search_params(self, k: int, selector):
        params = faiss.SearchParametersIVF()
        params.nprobe = int(self.params.get("nprobe", 16))
        if selector is not None:
            params.sel = selector
        return params
