"""The core of the index service: validation, ranking and pagination, independent of gRPC.

Every method takes the current Snapshot once (`state.snapshot`) and works on it alone, so calls
never block each other and never see a half-applied change.
"""
from __future__ import annotations

import base64
import math
import time
from dataclasses import dataclass

import numpy as np

from servekit.errors import InvalidArgument, NotFound

from .embedder_client import EmbedderClient
from .filters import FilterSpec, allowed_mask
from .fusion import HybridParams, candidate_depth, fuse_search
from .snapshot import ServedState, Snapshot

MODE_UNSPECIFIED, MODE_SEMANTIC, MODE_LEXICAL, MODE_HYBRID = 0, 1, 2, 3
MODE_NAMES = {MODE_SEMANTIC: "MODE_SEMANTIC", MODE_LEXICAL: "MODE_LEXICAL", MODE_HYBRID: "MODE_HYBRID"}
MAX_QUERY_CHARS = 10_000
MAX_OFFSET = 10_000
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
MAX_HNSW_EF, MAX_IVF_NPROBE = 4096, 65536
_TOKEN_PREFIX = "p1:"


@dataclass
class Ranking:
    """One page of hits: rows and scores best first; hit i has rank offset + i + 1."""
    snapshot: Snapshot
    rows: np.ndarray
    scores: np.ndarray
    offset: int
    embed_us: int = 0
    search_us: int = 0
    cached: bool = False


def _now_us() -> int:
    return time.perf_counter_ns() // 1000


class SearchCore:
    def __init__(self, state: ServedState, embedder: EmbedderClient, *, max_k: int,
                 max_batch_products: int):
        self.state, self.embedder = state, embedder
        self.max_k, self.max_batch_products = max_k, max_batch_products

    # --- validation ---------------------------------------------------------------------------
    def _check_page(self, k: int, offset: int, min_score: float | None) -> None:
        if not 1 <= k <= self.max_k:
            raise InvalidArgument(f"k must be between 1 and {self.max_k}, got {k}")
        if not 0 <= offset <= MAX_OFFSET:
            raise InvalidArgument(f"offset must be between 0 and {MAX_OFFSET}, got {offset}")
        if min_score is not None and math.isnan(min_score):
            raise InvalidArgument("min_score must be a number, got NaN")

    @staticmethod
    def _page(scores: np.ndarray, rows: np.ndarray, offset: int, k: int,
              min_score: float | None) -> tuple[np.ndarray, np.ndarray]:
        valid = rows >= 0
        scores, rows = scores[valid], rows[valid]
        if min_score is not None:
            keep = scores >= min_score
            scores, rows = scores[keep], rows[keep]
        return scores[offset:offset + k], rows[offset:offset + k]

    @staticmethod
    def vector_overrides(hnsw_ef: int | None, ivf_nprobe: int | None, exact: bool) -> dict:
        """One request's VectorSearchParams -> the overrides VectorIndex.search takes."""
        overrides: dict = {}
        if hnsw_ef is not None:
            if not 1 <= hnsw_ef <= MAX_HNSW_EF:
                raise InvalidArgument(f"params.hnsw_ef must be between 1 and {MAX_HNSW_EF}, got {hnsw_ef}")
            overrides["ef_search"] = hnsw_ef
        if ivf_nprobe is not None:
            if not 1 <= ivf_nprobe <= MAX_IVF_NPROBE:
                raise InvalidArgument(f"params.ivf_nprobe must be between 1 and {MAX_IVF_NPROBE}, "
                                      f"got {ivf_nprobe}")
            overrides["nprobe"] = ivf_nprobe
        if exact:
            overrides["exact"] = True
        return overrides

    # --- Search -------------------------------------------------------------------------------
    def search(self, *, query: str, vector: list[float] | None, k: int, spec: FilterSpec, mode: int,
               min_score: float | None, offset: int, hybrid: HybridParams | None,
               timeout: float | None, overrides: dict | None = None) -> Ranking:
        if mode not in (MODE_UNSPECIFIED, *MODE_NAMES):
            raise InvalidArgument(f"mode {mode} is not a Mode (use MODE_SEMANTIC, MODE_LEXICAL or "
                                  f"MODE_HYBRID)")
        mode = mode or MODE_SEMANTIC
        self._check_page(k, offset, min_score)
        if vector:
            if query:
                raise InvalidArgument("give either query or vector, not both")
            if mode != MODE_SEMANTIC:
                raise InvalidArgument(f"vector search works in MODE_SEMANTIC only, not {MODE_NAMES[mode]}")
        else:
            if not query.strip():
                raise InvalidArgument("query is empty: give a query text (or a vector)")
            if len(query) > MAX_QUERY_CHARS:
                raise InvalidArgument(f"query is {len(query)} characters long; at most "
                                      f"{MAX_QUERY_CHARS} are allowed")
        snap = self.state.snapshot
        allowed = allowed_mask(snap.catalog, spec, snap.live)
        start = _now_us()
        qv, cached = None, False
        if vector:
            qv = self._query_from_vector(vector, snap)
        elif mode != MODE_LEXICAL:
            qv, cached = self.embedder.query_vector(query, timeout=timeout)
        embed_us = 0 if cached else _now_us() - start
        start = _now_us()
        if mode == MODE_SEMANTIC:
            scores, rows = snap.vectors.search(qv[None, :], offset + k, allowed, overrides)
            scores, rows = self._page(scores[0], rows[0], offset, k, min_score)
        elif mode == MODE_LEXICAL:
            scores, rows = snap.lexical.search(query, k, allowed_rows=allowed, offset=offset,
                                               min_score=min_score)
        else:
            n_allowed = snap.product_count if allowed is None else int(allowed.sum())
            depth = candidate_depth(offset, k, n_allowed)
            _, sem_rows = snap.vectors.search(qv[None, :], depth, allowed, overrides)
            sem_rows = sem_rows[0][sem_rows[0] >= 0]
            _, lex_rows = snap.lexical.rank(query, allowed_rows=allowed, depth=depth)
            scores, rows = fuse_search(sem_rows, lex_rows, hybrid or HybridParams(), k,
                                       offset=offset, min_score=min_score)
        return Ranking(snap, rows, scores, offset, embed_us=embed_us, search_us=_now_us() - start,
                       cached=cached)

    @staticmethod
    def _query_from_vector(vector: list[float], snap: Snapshot) -> np.ndarray:
        qv = np.asarray(vector, dtype=np.float32)
        if len(qv) != snap.vectors.dimension:
            raise InvalidArgument(f"vector has {len(qv)} values; the index's dimension is "
                                  f"{snap.vectors.dimension}")
        if not np.isfinite(qv).all():
            raise InvalidArgument("vector holds NaN or infinite values")
        norm = float(np.linalg.norm(qv))
        if norm == 0:
            raise InvalidArgument("vector is all zeros")
        return qv / norm

    # --- SimilarProducts ----------------------------------------------------------------------
    def similar(self, *, product_id: str, k: int, spec: FilterSpec, min_score: float | None,
                offset: int, overrides: dict | None = None) -> Ranking:
        self._check_page(k, offset, min_score)
        snap = self.state.snapshot
        row = self._row(snap, product_id)
        start = _now_us()
        qv = snap.vectors.vector(row)[None, :]
        allowed = allowed_mask(snap.catalog, spec, snap.live)
        if allowed is None:  # one extra hit, then drop the product itself
            scores, rows = snap.vectors.search(qv, offset + k + 1, None, overrides)
            scores, rows = scores[0], rows[0]
            keep = rows != row
            scores, rows = scores[keep], rows[keep]
        else:
            allowed = allowed.copy()
            allowed[row] = False
            scores, rows = snap.vectors.search(qv, offset + k, allowed, overrides)
            scores, rows = scores[0], rows[0]
        scores, rows = self._page(scores, rows, offset, k, min_score)
        return Ranking(snap, rows, scores, offset, search_us=_now_us() - start)

    # --- GetProduct / ListProducts / GetStats -------------------------------------------------
    @staticmethod
    def _row(snap: Snapshot, product_id: str) -> int:
        if not product_id:
            raise InvalidArgument("product_id is empty")
        row = snap.row_of(product_id)
        if row is None:
            raise NotFound(f"no product with id {product_id!r}")
        return row

    def get(self, product_id: str) -> tuple[Snapshot, int]:
        snap = self.state.snapshot
        return snap, self._row(snap, product_id)

    def list(self, page_size: int, page_token: str) -> tuple[Snapshot, np.ndarray, str]:
        """(snapshot, rows of the page in catalog order, next_page_token or "")."""
        if page_size == 0:
            page_size = DEFAULT_PAGE_SIZE
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE} (0 = "
                                  f"{DEFAULT_PAGE_SIZE}), got {page_size}")
        start = _decode_token(page_token)
        snap = self.state.snapshot
        n = len(snap.catalog)
        if snap.live is None:
            rows = np.arange(min(start, n), min(start + page_size + 1, n))
        else:
            rows = np.flatnonzero(snap.live[start:])[:page_size + 1] + start
        more = len(rows) > page_size
        rows = rows[:page_size]
        return snap, rows, _encode_token(int(rows[-1]) + 1) if more else ""

    def stats(self) -> dict:
        snap = self.state.snapshot
        m = snap.manifest
        return {
            "product_count": snap.product_count, "dimension": snap.vectors.dimension,
            "model_name": m["model_name"], "index_type": m["index_type"],
            "catalog_sha256": m["catalog_sha256"], "built_at": m["built_at"],
            "embedder_target": self.embedder.display, "max_k": self.max_k,
            "max_batch_products": self.max_batch_products,
            "query_cache_hits": self.embedder.cache.hits,
            "query_cache_misses": self.embedder.cache.misses,
            "wal_sequence": snap.sequence,
            "lexical_vocabulary_size": snap.lexical.vocabulary_size,
            "catalog_format": m.get("catalog_format", "csv"),
            "csv_delimiter": m.get("csv_delimiter", ","),
        }


def _encode_token(row: int) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{row}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if text.startswith(_TOKEN_PREFIX) and text[len(_TOKEN_PREFIX):].isdigit():
            return int(text[len(_TOKEN_PREFIX):])
    except (ValueError, UnicodeDecodeError):
        pass
    raise InvalidArgument("page_token is not one this server issued: pass next_page_token of the "
                          "previous page, or empty for the first page")
