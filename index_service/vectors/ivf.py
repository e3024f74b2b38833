"""Approximate search with an inverted file (IndexIVFFlat, inner product).

params: nlist (clusters; 0 = 4 * sqrt(N) up to 1024, and at most N / 39), nprobe (clusters
visited, default 64). On synthetic embedding-like vectors nprobe 16 gave recall@10 0.71 at 100k and
64 gave 0.95 (0.98 at 1M with 1024 lists); 4 * sqrt(N) = 4000 lists at 1M trained too slowly on 2
cores, hence the cap (set nlist explicitly for more).
The vectors for exact scans come from embeddings.npy (memory-mapped), not from the index.
"""
from __future__ import annotations

import math

import faiss
import numpy as np

from .base import VectorIndex

AUTO_NLIST_MAX, DEFAULT_NPROBE = 1024, 64


class IvfIndex(VectorIndex):
    kind = "ivf"
    approximate = True
    build_params = ("nlist",)

    def _new_index(self, vectors: np.ndarray) -> faiss.Index:
        n = len(vectors)
        auto = min(int(4 * math.sqrt(max(n, 1))), AUTO_NLIST_MAX)
        nlist = int(self.params.get("nlist", 0)) or auto
        nlist = max(1, min(nlist, n // 39 if n >= 39 else 1))
        quantizer = faiss.IndexFlatIP(self.dimension)
        index = faiss.IndexIVFFlat(quantizer, self.dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.add(vectors)
        self._quantizer = quantizer  # keep the Python wrapper alive with the index
        return index

    def _search_params(self, k: int, selector, overrides: dict):
        params = faiss.SearchParametersIVF()
        params.nprobe = int(overrides.get("nprobe") or self.params.get("nprobe", DEFAULT_NPROBE))
        if selector is not None:
            params.sel = selector
        return params
