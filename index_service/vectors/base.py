"""The interface every backend implements, and the exact-filter logic they share.

Filtering is exact: with `allowed` (a boolean mask over rows), search returns min(k, allowed rows)
hits. Small allowed sets (<= 2% of rows, or a few thousand) are scanned exactly with numpy (fast
and exact for any backend); larger ones go into FAISS with an IDSelectorBitmap; an approximate
backend that returns fewer than asked (filtered or not: IVF whose probed clusters hold fewer than
k rows) falls back to the exact scan, so a search returns min(k, allowed rows) hits whatever the
index type, its parameters and whether the catalog has been written to.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import faiss
import numpy as np

from .exact import exact_topk

EXACT_SCAN_FRACTION = 0.02
EXACT_SCAN_MIN_ROWS = 4096
_search_threads = 0  # OpenMP threads of one search call; 0: OpenMP's default


def set_search_threads(n: int) -> None:
    """OpenMP threads each search call uses (0: OpenMP's default, every core). Applied per call
    in the calling thread (OpenMP's thread count is per thread), so builds keep every core."""
    global _search_threads
    _search_threads = int(n)


def normalize(vectors: np.ndarray, copy: bool = True) -> np.ndarray:
    """L2-normalized float32 rows (zeros stay zero); copy=False normalizes a float32 array in place."""
    out = np.array(vectors, dtype=np.float32, copy=copy or None, ndmin=2)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


class VectorIndex(ABC):
    kind: str = ""
    approximate: bool = False
    # Parameters fixed at build time (a change needs a rebuild); the others apply per search.
    build_params: tuple[str, ...] = ()

    def __init__(self, dimension: int, params: dict):
        self.dimension, self.params = dimension, dict(params)
        self.index: faiss.Index | None = None
        self._vectors: np.ndarray | None = None

    # --- backend-specific -------------------------------------------------------------------
    @abstractmethod
    def _new_index(self, vectors: np.ndarray) -> faiss.Index: ...

    def _search_params(self, k: int, selector, overrides: dict) -> faiss.SearchParameters | None:
        """FAISS parameters of one search; `overrides`: this request's values (ef_search, nprobe)."""
        return faiss.SearchParameters(sel=selector) if selector is not None else None

    def _stored_vectors(self) -> np.ndarray | None:
        """A zero-copy view of the vectors inside the FAISS index, where there is one."""
        return None

    # --- common -----------------------------------------------------------------------------
    def build(self, vectors: np.ndarray) -> "VectorIndex":
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"vectors of shape {vectors.shape}, expected (N, {self.dimension})")
        self.index = self._new_index(vectors)
        self._vectors = self._stored_vectors()
        if self._vectors is None:
            self._vectors = vectors
        return self

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal) if self.index is not None else 0

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors

    def vector(self, row: int) -> np.ndarray:
        return np.asarray(self._vectors[row], dtype=np.float32)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """A float32 copy of the vectors of `rows` (compaction: the rows it keeps)."""
        return np.ascontiguousarray(np.asarray(self._vectors)[rows], dtype=np.float32)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None,
               overrides: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, rows) per query, best first; rows may hold -1 past the last hit.
        `overrides`: one request's search parameters (ef_search, nprobe, exact=True: scan every
        allowed vector exactly, whatever the index type)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        overrides = overrides or {}
        if _search_threads:
            faiss.omp_set_num_threads(_search_threads)
        n = self.ntotal
        if allowed is None:
            k_eff = min(k, n)
            if k_eff == 0:
                return _empty(len(queries))
            if overrides.get("exact"):
                return exact_topk(self._vectors, None, queries, k_eff)
            scores, rows = self.index.search(queries, k_eff,
                                             params=self._search_params(k_eff, None, overrides))
            if self.approximate and (rows < 0).any():  # e.g. IVF probing too few clusters
                return exact_topk(self._vectors, None, queries, k_eff)
            return scores, rows
        rows_allowed = np.flatnonzero(allowed[:n])
        k_eff = min(k, len(rows_allowed))
        if k_eff == 0:
            return _empty(len(queries))
        if overrides.get("exact") or len(rows_allowed) <= max(EXACT_SCAN_MIN_ROWS,
                                                              EXACT_SCAN_FRACTION * n):
            return exact_topk(self._vectors, rows_allowed, queries, k_eff)
        bitmap = np.packbits(np.asarray(allowed[:n], dtype=bool), bitorder="little")
        selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
        scores, rows = self.index.search(queries, k_eff,
                                         params=self._search_params(k_eff, selector, overrides))
        if self.approximate and (rows < 0).any():
            return exact_topk(self._vectors, rows_allowed, queries, k_eff)
        return scores, rows

    def with_added(self, vectors: np.ndarray) -> "VectorIndex":
        """A NEW index holding this one's vectors and then `vectors` (rows ntotal, ntotal + 1, ...).
        This index is not touched: searches on it may run meanwhile. The new rows go into a small
        exact layer on top of this index (layered.py): nothing of this index is copied."""
        from .layered import LayeredIndex
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        return LayeredIndex(self, vectors)

    def with_added_copy(self, vectors: np.ndarray) -> "VectorIndex":
        """Like with_added, but a full copy of this index with `vectors` added to it (copy-on-write;
        costs a copy of the whole index)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        new = type(self)(self.dimension, self.params)
        new.index = faiss.clone_index(self.index)
        new.index.add(vectors)
        new._vectors = new._stored_vectors()
        if new._vectors is None:
            new._vectors = np.concatenate([np.asarray(self._vectors), vectors])
        return new

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, vectors: np.ndarray, params: dict) -> "VectorIndex":
        index = faiss.read_index(str(path))
        self = cls(index.d, params)
        self.index = index
        self._vectors = self._stored_vectors()
        if self._vectors is None:
            self._vectors = vectors
        if self.ntotal != len(vectors):
            raise ValueError(f"{path}: index holds {self.ntotal} vectors, embeddings {len(vectors)}")
        return self


def _empty(n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    return np.empty((n_queries, 0), dtype=np.float32), np.empty((n_queries, 0), dtype=np.int64)
