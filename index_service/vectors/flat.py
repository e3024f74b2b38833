"""Exact inner-product search (IndexFlatIP): the default, and the reference for recall."""
from __future__ import annotations

import faiss
import numpy as np

from .base import VectorIndex


def flat_view(index) -> np.ndarray:
    """Zero-copy (ntotal, d) view of an IndexFlat's vectors."""
    flat = faiss.downcast_index(index)
    n, d = int(flat.ntotal), int(flat.d)
    if n == 0:
        return np.empty((0, d), dtype=np.float32)
    return faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d)


class FlatIndex(VectorIndex):
    kind = "flat"

    def _new_index(self, vectors: np.ndarray) -> faiss.Index:
        index = faiss.IndexFlatIP(self.dimension)
        index.add(vectors)
        return index

    def _stored_vectors(self) -> np.ndarray | None:
        return flat_view(self.index)
