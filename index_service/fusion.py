"""Ranking helpers and reciprocal rank fusion (RRF) for MODE_HYBRID.

Interface (for the Search handler)::

    params = HybridParams.from_request(rrf_k=None, semantic_weight=None, lexical_weight=None)
    depth = candidate_depth(offset, k, n_allowed)      # rows to take from each ranking
    sem_rows = <semantic ranking of the allowed rows, best first, `depth` long>
    lex_scores, lex_rows = lexical.rank(query, allowed_rows, depth)   # positive scores only
    scores, rows = fuse_search(sem_rows, lex_rows, params, k, offset=offset, min_score=min_score)

`top_ranked(scores, rows, n)` is the exact top-n used by the lexical index (and usable for any
exact scan): best score first, ties in catalog order (lower row first).

Fusion: score(row) = semantic_weight / (rrf_k + semantic_rank) + lexical_weight / (rrf_k +
lexical_rank), ranks counted from 1 within the filtered candidate set (a filter leaves no gaps); a
row absent from one ranking gets 0 from it (the lexical ranking holds only rows that share at least
one term with the query). Ties keep catalog order. Defaults rrf_k=60, weights 1.

Depth: each ranking is taken `candidate_depth(offset, k, n_allowed)` rows deep: the whole
filtered ranking when at most FULL_RANKING_MAX rows are allowed (exact RRF; every catalog we ship
or evaluate is that small), else max(FULL_RANKING_MAX, DEPTH_FACTOR * (offset + k)) rows. A cut
can only under-count a row's score, by at most weight / (rrf_k + depth + 1) per ranking it was cut
from (< 0.001 at depth 1000, rrf_k 60, weight 1), against 1 / (rrf_k + r) for a row ranked r-th.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from servekit.errors import InvalidArgument

DEFAULT_RRF_K = 60.0
DEFAULT_WEIGHT = 1.0
# Up to this many allowed rows, hybrid fuses the complete filtered rankings (exact RRF).
FULL_RANKING_MAX = 1000
# Past that, each ranking is cut at this multiple of offset + k (and never shorter than FULL_RANKING_MAX).
DEPTH_FACTOR = 10


@dataclass(frozen=True)
class HybridParams:
    rrf_k: float = DEFAULT_RRF_K
    semantic_weight: float = DEFAULT_WEIGHT
    lexical_weight: float = DEFAULT_WEIGHT

    @classmethod
    def from_request(cls, rrf_k: float | None = None, semantic_weight: float | None = None,
                     lexical_weight: float | None = None) -> "HybridParams":
        """Unset (None) fields take the defaults; raises InvalidArgument on bad values."""
        params = cls(DEFAULT_RRF_K if rrf_k is None else float(rrf_k),
                     DEFAULT_WEIGHT if semantic_weight is None else float(semantic_weight),
                     DEFAULT_WEIGHT if lexical_weight is None else float(lexical_weight))
        params.validate()
        return params

    def validate(self) -> None:
        if not (math.isfinite(self.rrf_k) and self.rrf_k > 0):
            raise InvalidArgument(f"hybrid.rrf_k must be a finite number > 0, got {self.rrf_k}")
        for name in ("semantic_weight", "lexical_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InvalidArgument(f"hybrid.{name} must be a finite number >= 0, got {value}")
        if self.semantic_weight == 0 and self.lexical_weight == 0:
            raise InvalidArgument("hybrid.semantic_weight and hybrid.lexical_weight are both 0: "
                                  "at least one must be > 0")


def candidate_depth(offset: int, k: int, n_allowed: int) -> int:
    """How many rows to take from each ranking for hybrid (see the module docstring)."""
    if n_allowed <= FULL_RANKING_MAX:
        return n_allowed
    return min(n_allowed, max(FULL_RANKING_MAX, DEPTH_FACTOR * (offset + k)))


def top_ranked(scores: np.ndarray, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n best (score, row) pairs, best first, ties by lower row; exact, also at tie boundaries.

    `rows` must be sorted ascending (catalog order) and aligned with `scores`.
    """
    scores = np.asarray(scores)
    rows = np.asarray(rows)
    if n <= 0 or scores.size == 0:
        return scores[:0], rows[:0]
    if n < scores.size:
        # Every row scoring at least the n-th best score (ties at the boundary included), then sort.
        threshold = np.partition(scores, scores.size - n)[scores.size - n]
        keep = np.flatnonzero(scores >= threshold)
        scores, rows = scores[keep], rows[keep]
    order = np.argsort(-scores, kind="stable")[:n]  # stable: equal scores keep ascending rows
    return scores[order], rows[order]


def rrf_scores(semantic_rows, lexical_rows, params: HybridParams) -> tuple[np.ndarray, np.ndarray]:
    """Fused (scores, rows) over every row present in either ranking, best first, ties by row.

    `semantic_rows` and `lexical_rows` are ranking keys in rank order (best first), each at most
    once: catalog rows, or any sortable keys of one dtype (a store's product ids).
    """
    sem, lex = np.asarray(semantic_rows), np.asarray(lexical_rows)
    if not lex.size:  # an empty list takes the other's key type (np.array([]) is float)
        lex = lex.astype(sem.dtype)
    elif not sem.size:
        sem = sem.astype(lex.dtype)
    rows = np.union1d(sem, lex)  # sorted ascending: catalog order for ties
    scores = np.zeros(rows.size, dtype=np.float64)
    for ranking, weight in ((sem, params.semantic_weight), (lex, params.lexical_weight)):
        if ranking.size and weight:
            ranks = np.arange(1, ranking.size + 1, dtype=np.float64)
            scores[np.searchsorted(rows, ranking)] += weight / (params.rrf_k + ranks)
    return top_ranked(scores, rows, rows.size)


def fuse_search(semantic_rows, lexical_rows, params: HybridParams, k: int, offset: int = 0,
                min_score: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """RRF, then min_score, then the page [offset, offset + k): (scores, rows), best first.

    Hit ranks are offset + 1 .. offset + len(rows).
    """
    scores, rows = rrf_scores(semantic_rows, lexical_rows, params)
    if min_score is not None:
        keep = scores >= min_score
        scores, rows = scores[keep], rows[keep]
    return scores[offset:offset + k], rows[offset:offset + k]
