"""Vector index backends behind one interface (txtai style): flat (exact), hnsw, ivf.

Modules: base.py (the VectorIndex interface and exact filtering), flat.py, hnsw.py, ivf.py (one
FAISS index type each), exact.py (the exact top-k scan filters and small sets use), layered.py
(live writes: new rows in an exact layer on top of a built index).

    index = create("hnsw", dimension=384, params={"m": 32})
    index.build(vectors)                     # L2-normalized float32, one row per product
    scores, rows = index.search(queries, k, allowed=mask)
    index.save(path); load("hnsw", path, vectors)
"""
from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from .base import VectorIndex, normalize
from .flat import FlatIndex
from .hnsw import HnswIndex
from .ivf import IvfIndex

# A batch of >= 20 queries uses BLAS (measured: 100 queries x 100k in 48 ms instead of ~1 s).
faiss.cvar.distance_compute_blas_threshold = 20

BACKENDS: dict[str, type[VectorIndex]] = {"flat": FlatIndex, "hnsw": HnswIndex, "ivf": IvfIndex}

__all__ = ["VectorIndex", "normalize", "create", "load", "BACKENDS"]


def _backend(kind: str) -> type[VectorIndex]:
    try:
        return BACKENDS[kind]
    except KeyError:
        raise ValueError(f"unknown index type {kind!r} (choose {', '.join(BACKENDS)})") from None


def create(kind: str, dimension: int, params: dict | None = None) -> VectorIndex:
    return _backend(kind)(dimension, params or {})


def load(kind: str, path: Path, vectors: np.ndarray, params: dict | None = None) -> VectorIndex:
    return _backend(kind).load(path, vectors, params or {})
