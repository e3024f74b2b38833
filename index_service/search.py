"""The core of the index service: validation, query vectors, ranking and pagination, above the
store (store.py) and independent of gRPC.

Every call takes one store view (`store.view()`) and works on it alone, so calls never block
each other and never see a half-applied change.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from servekit.errors import InvalidArgument
from servekit.text import has_content

from .embedder_client import EmbedderClient
from .filters import FilterSpec
from .fusion import HybridDefaults, HybridParams, candidate_depth, fuse_search
from .search_limits import MAX_OFFSET
from .store import ProductPage, Ranked, StoreHolder, StoreView

MODE_UNSPECIFIED, MODE_SEMANTIC, MODE_LEXICAL, MODE_HYBRID = 0, 1, 2, 3
MODE_NAMES = {MODE_SEMANTIC: "MODE_SEMANTIC", MODE_LEXICAL: "MODE_LEXICAL", MODE_HYBRID: "MODE_HYBRID"}
MAX_QUERY_CHARS = 10_000
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
MAX_SIMILAR_IDS = 100  # SimilarProductsRequest.product_ids
MAX_HNSW_EF, MAX_IVF_NPROBE = 4096, 65536


@dataclass
class Ranking:
    """One page of hits: products and scores best first; hit i has rank offset + i + 1."""
    products: list[dict]
    scores: np.ndarray
    offset: int
    embed_us: int = 0
    search_us: int = 0
    cached: bool = False


def _now_us() -> int:
    return time.perf_counter_ns() // 1000


def _page(ranked: Ranked, offset: int, k: int, min_score: float | None) -> Ranked:
    """min_score, then the page [offset, offset + k) of a ranking."""
    keys, scores = ranked.keys, ranked.scores
    if min_score is not None:
        keep = scores >= min_score
        keys, scores = keys[keep], scores[keep]
    return Ranked(keys[offset:offset + k], scores[offset:offset + k])


class SearchCore:
    def __init__(self, holder: StoreHolder, embedder: EmbedderClient, *, max_k: int,
                 max_batch_products: int, hybrid: HybridDefaults = HybridDefaults()):
        self.holder, self.embedder = holder, embedder
        self.max_k, self.max_batch_products = max_k, max_batch_products
        self.hybrid_defaults = hybrid
        self.default_hybrid = HybridParams.from_request(defaults=hybrid)  # validates the flags

    def hybrid_params(self, rrf_k: float | None = None, semantic_weight: float | None = None,
                      lexical_weight: float | None = None, *, fusion: int | None = None,
                      alpha: float | None = None, candidates: int | None = None) -> HybridParams:
        """A request's HybridParams (recsys.v1 fields; None = unset), the service's defaults
        filled in; InvalidArgument on bad values."""
        return HybridParams.from_request(rrf_k, semantic_weight, lexical_weight, fusion=fusion,
                                         alpha=alpha, candidates=candidates,
                                         defaults=self.hybrid_defaults)

    # --- validation ---------------------------------------------------------------------------
    def _check_page(self, k: int, offset: int, min_score: float | None) -> None:
        if not 1 <= k <= self.max_k:
            raise InvalidArgument(f"k must be between 1 and {self.max_k}, got {k}")
        if not 0 <= offset <= MAX_OFFSET:
            raise InvalidArgument(f"offset must be between 0 and {MAX_OFFSET}, got {offset}")
        if min_score is not None and math.isnan(min_score):
            raise InvalidArgument("min_score must be a number, got NaN")

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

    @staticmethod
    def _check_query(query: str, vector: list[float] | None, mode: int) -> None:
        if vector:
            if query:
                raise InvalidArgument("give either query or vector, not both")
            if mode != MODE_SEMANTIC:
                raise InvalidArgument(f"vector search works in MODE_SEMANTIC only, not {MODE_NAMES[mode]}")
            return
        if not has_content(query):
            raise InvalidArgument("query is empty (or only whitespace and invisible characters): "
                                  "give a query text (or a vector)")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidArgument(f"query is {len(query)} characters long; at most "
                                  f"{MAX_QUERY_CHARS} are allowed")

    # --- Search -------------------------------------------------------------------------------
    def search(self, *, query: str, vector: list[float] | None, k: int, spec: FilterSpec, mode: int,
               min_score: float | None, offset: int, hybrid: HybridParams | None,
               timeout: float | None, overrides: dict | None = None) -> Ranking:
        if mode not in (MODE_UNSPECIFIED, *MODE_NAMES):
            raise InvalidArgument(f"mode {mode} is not a Mode (use MODE_SEMANTIC, MODE_LEXICAL or "
                                  f"MODE_HYBRID)")
        mode = mode or MODE_SEMANTIC
        self._check_page(k, offset, min_score)
        self._check_query(query, vector, mode)
        store = self.holder.store
        view = store.view()
        start = _now_us()
        qv, cached = None, False
        if vector:
            qv = _query_from_vector(vector, store.dimension)
        elif mode != MODE_LEXICAL:
            qv, cached = self.embedder.query_vector(query, timeout=timeout)
        embed_us = 0 if cached else _now_us() - start
        start = _now_us()
        overrides = overrides or {}
        if mode == MODE_SEMANTIC:
            ranked = view.vector_ranking(qv, offset + k, spec, overrides)
        elif mode == MODE_LEXICAL:
            ranked = view.lexical_ranking(query, offset + k, spec, matches_only=False)
        else:
            ranked = _hybrid(view, qv, query, spec, hybrid or self.default_hybrid, k, offset,
                             overrides)
        products, scores = _with_products(view, _page(ranked, offset, k, min_score))
        return Ranking(products, scores, offset, embed_us=embed_us,
                       search_us=_now_us() - start, cached=cached)

    # --- SimilarProducts ----------------------------------------------------------------------
    def similar(self, *, product_id: str, k: int, spec: FilterSpec, min_score: float | None,
                offset: int, overrides: dict | None = None, product_ids=()) -> Ranking:
        """Products like `product_id`, or like all of `product_ids` (their mean direction)."""
        self._check_page(k, offset, min_score)
        ids = _similar_ids(product_id, list(product_ids))
        view = self.holder.store.view()
        start = _now_us()
        ranked = view.vector_ranking(_mean_direction(view.vectors_of(ids)), offset + k, spec,
                                     overrides or {}, exclude_ids=tuple(ids))
        products, scores = _with_products(view, _page(ranked, offset, k, min_score))
        return Ranking(products, scores, offset, search_us=_now_us() - start)

    # --- GetProduct / ListProducts / GetStats -------------------------------------------------
    def get(self, product_id: str) -> dict:
        _check_id(product_id)
        return self.holder.store.view().product(product_id)

    def list(self, page_size: int, page_token: str) -> ProductPage:
        if page_size == 0:
            page_size = DEFAULT_PAGE_SIZE
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE} (0 = "
                                  f"{DEFAULT_PAGE_SIZE}), got {page_size}")
        return self.holder.store.view().page(page_size, page_token)

    def stats(self) -> dict:
        store = self.holder.store
        return {
            **store.stats(), "store": store.name,
            "embedder_target": self.embedder.display, "max_k": self.max_k,
            "max_batch_products": self.max_batch_products,
            "query_cache_hits": self.embedder.cache.hits,
            "query_cache_misses": self.embedder.cache.misses,
            "hybrid_fusion": self.hybrid_defaults.fusion, "hybrid_alpha": self.hybrid_defaults.alpha,
            "hybrid_candidates": self.hybrid_defaults.candidates,
        }


def _with_products(view: StoreView, page: Ranked) -> tuple[list[dict], np.ndarray]:
    """The page's products and scores (a product deleted since it was ranked is left out)."""
    products = view.products(page.keys)
    if all(p is not None for p in products):
        return products, page.scores
    kept = [i for i, p in enumerate(products) if p is not None]
    return [products[i] for i in kept], page.scores[kept]


def _check_id(product_id: str) -> None:
    if not product_id:
        raise InvalidArgument("product_id is empty")


def _similar_ids(product_id: str, product_ids: list[str]) -> list[str]:
    """The products a SimilarProducts call is about: product_id, or product_ids without repeats."""
    if product_id and product_ids:
        raise InvalidArgument("set product_id or product_ids, not both")
    if not product_ids:
        if not product_id:
            raise InvalidArgument("product_id is empty (or give several in product_ids)")
        return [product_id]
    if len(product_ids) > MAX_SIMILAR_IDS * 10:  # before any work on them: repeats count here
        raise InvalidArgument(f"product_ids holds {len(product_ids)} ids; at most "
                              f"{MAX_SIMILAR_IDS} distinct and {MAX_SIMILAR_IDS * 10} in all")
    empty = [i for i, pid in enumerate(product_ids) if not pid]
    if empty:
        raise InvalidArgument(f"product_ids[{empty[0]}] is empty")
    distinct = list(dict.fromkeys(product_ids))  # a repeated id counts once
    if len(distinct) > MAX_SIMILAR_IDS:
        raise InvalidArgument(f"product_ids holds {len(distinct)} distinct ids; at most "
                              f"{MAX_SIMILAR_IDS}")
    return distinct


def _mean_direction(vectors: np.ndarray) -> np.ndarray:
    """One stored vector as it is; several: their mean, re-normalized."""
    if len(vectors) == 1:
        return vectors[0]
    mean = vectors.astype(np.float64).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-6:
        raise InvalidArgument("the products' vectors cancel out: no direction is like all of "
                              "them; ask with fewer products")
    return (mean / norm).astype(np.float32)


def _hybrid(view: StoreView, qv: np.ndarray, query: str, spec: FilterSpec, params: HybridParams,
            k: int, offset: int, overrides: dict) -> Ranked:
    """Both rankings, `candidate_depth` deep, fused (fusion.py)."""
    depth = candidate_depth(offset, k, view.size_hint(spec), params.candidates)
    semantic = view.vector_ranking(qv, depth, spec, overrides)
    lexical = view.lexical_ranking(query, depth, spec, matches_only=True)
    scores, keys = fuse_search(semantic.keys, lexical.keys, params, offset + k,
                               semantic_scores=semantic.scores, lexical_scores=lexical.scores)
    return Ranked(keys, scores)


def _query_from_vector(vector: list[float], dimension: int) -> np.ndarray:
    qv = np.asarray(vector, dtype=np.float64)
    if len(qv) != dimension:
        raise InvalidArgument(f"vector has {len(qv)} values; the index's dimension is {dimension}")
    if not np.isfinite(qv).all():
        raise InvalidArgument("vector holds NaN or infinite values")
    largest = float(np.abs(qv).max(initial=0.0))
    if largest == 0:
        raise InvalidArgument("vector is all zeros")
    qv = qv / largest  # scaled first: the norm of 1e25s (or 1e-25s) neither overflows nor vanishes
    return (qv / np.linalg.norm(qv)).astype(np.float32)
