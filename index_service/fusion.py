"""Hybrid search (MODE_HYBRID): how deep each ranking is taken, and how the semantic and lexical
rankings are fused: reciprocal rank fusion (RRF) or a weighted sum of min-max normalized scores.

Interface (for the Search handler)::

    defaults = HybridDefaults(fusion="rrf", alpha=0.5, candidates=0)    # the service's flags
    params = HybridParams.from_request(rrf_k=None, semantic_weight=None, lexical_weight=None,
                                       fusion=0, alpha=None, candidates=None, defaults=defaults)
    depth = candidate_depth(offset, k, n_allowed, params.candidates)   # rows from each ranking
    sem = <semantic ranking of the allowed rows: keys and scores, best first, `depth` long>
    lex = <lexical ranking of the allowed rows, positive scores only, `depth` long>
    scores, keys = fuse_search(sem.keys, lex.keys, params, k, offset=offset, min_score=min_score,
                               semantic_scores=sem.scores, lexical_scores=lex.scores)

`top_ranked(scores, rows, n)` is the exact top-n used by the lexical index (and usable for any
exact scan): best score first, ties in catalog order (lower row first).

RRF (fusion "rrf"): score(row) = semantic_weight / (rrf_k + semantic_rank) + lexical_weight /
(rrf_k + lexical_rank), ranks counted from 1 within the filtered candidate lists (a filter leaves
no gaps); a row absent from one ranking gets 0 from it (the lexical ranking holds only rows that
share at least one term with the query). Ties: the lower key first. Defaults rrf_k=60, weights 1.

Weighted (fusion "weighted"): score(row) = alpha * minmax(semantic score) + (1 - alpha) *
minmax(lexical score), over the union of both candidate lists, per query: (s - low) / (high -
low), so each side's best candidate gets 1 whatever the scale (cosine, TF-IDF cosine, unbounded
BM25). Semantic: low is its list's lowest score. Lexical: the lexical list holds only rows sharing
a term with the query, so a row of the union missing from it scores 0 there, and low is 0 (its
list's lowest score when every row of the union is in it): the weakest real match stays above a
row with no match instead of falling to the same 0. A side whose scores are all equal (one
candidate, say) normalizes to 1 for each: a match is a match. A row missing from a list gets 0
from that side, and an empty list contributes nothing. The fused score is in [0, 1]. Ties: the
row that is a candidate on the weightier side first (alpha for semantic, 1 - alpha for lexical,
summed over the lists it is in), then the lower key. So alpha 1 gives exactly the semantic order,
and alpha 0 the lexical order followed by the rows with no lexical match in key order: on the
FAISS store, exactly MODE_LEXICAL's order (it pads with zero-score rows in catalog order), as long
as the lists are not cut (below).

Depth: each ranking is taken `candidate_depth(offset, k, n_allowed, candidates)` rows deep. With
candidates 0 (automatic, the default): the whole filtered ranking when at most FULL_RANKING_MAX
rows are allowed (exact fusion; every catalog we ship or evaluate is that small), else
max(FULL_RANKING_MAX, DEPTH_FACTOR * (offset + k)) rows. A cut can only under-count a row's RRF
score, by at most weight / (rrf_k + depth + 1) per ranking it was cut from (< 0.001 at depth 1000,
rrf_k 60, weight 1), against 1 / (rrf_k + r) for a row ranked r-th; for weighted fusion a cut also
moves the minimum that each side is normalized against. With candidates C > 0: min(n_allowed,
max(C, k)) rows, whatever the offset: pages of the same k and C are cut from one fused list, so
paging neither repeats nor skips a product (past the lists' union, a page is empty). The
automatic depth grows with offset + k past 100 on more than FULL_RANKING_MAX allowed rows, so
there a product near a page boundary can move between pages: pass C for deep paging there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from servekit.errors import InvalidArgument

DEFAULT_RRF_K = 60.0
DEFAULT_WEIGHT = 1.0
DEFAULT_ALPHA = 0.5
FUSIONS = ("rrf", "weighted")
# recsys.v1.Fusion values; FUSION_UNSPECIFIED (0) is the service's default.
FUSION_OF_PROTO = {1: "rrf", 2: "weighted"}
# Up to this many allowed rows, hybrid fuses the complete filtered rankings (exact fusion).
FULL_RANKING_MAX = 1000
# Past that, each ranking is cut at this multiple of offset + k (and never shorter than FULL_RANKING_MAX).
DEPTH_FACTOR = 10
# Bounds of rrf_k and of the RRF weights (a weight may also be 0): past them a fused score
# overflows to inf or underflows to 0, and the order collapses to ties.
MAX_RRF_PARAM = 1e6
# The most rows a request (or --hybrid-candidates) may ask for from each ranking.
MAX_CANDIDATES = 100_000


@dataclass(frozen=True)
class HybridDefaults:
    """What a request that leaves a field unset gets (--hybrid-fusion, --hybrid-alpha,
    --hybrid-candidates; candidates 0 = the automatic depth)."""
    fusion: str = "rrf"
    alpha: float = DEFAULT_ALPHA
    candidates: int = 0


@dataclass(frozen=True)
class HybridParams:
    rrf_k: float = DEFAULT_RRF_K
    semantic_weight: float = DEFAULT_WEIGHT
    lexical_weight: float = DEFAULT_WEIGHT
    fusion: str = "rrf"
    alpha: float = DEFAULT_ALPHA
    # Rows from each ranking; 0 = automatic (candidate_depth).
    candidates: int = 0

    @classmethod
    def from_request(cls, rrf_k: float | None = None, semantic_weight: float | None = None,
                     lexical_weight: float | None = None, *, fusion: int | None = None,
                     alpha: float | None = None, candidates: int | None = None,
                     defaults: HybridDefaults = HybridDefaults()) -> "HybridParams":
        """Unset (None, or fusion 0) fields take the defaults; raises InvalidArgument on bad values.
        `fusion` is a recsys.v1.Fusion value."""
        if fusion and fusion not in FUSION_OF_PROTO:
            raise InvalidArgument(f"hybrid.fusion {fusion} is not a Fusion (use FUSION_RRF or "
                                  f"FUSION_WEIGHTED, or leave it unset for the service's default)")
        if candidates is not None and not 1 <= candidates <= MAX_CANDIDATES:
            raise InvalidArgument(f"hybrid.candidates must be between 1 and {MAX_CANDIDATES} (unset: "
                                  f"the service's default), got {candidates}")
        params = cls(DEFAULT_RRF_K if rrf_k is None else float(rrf_k),
                     DEFAULT_WEIGHT if semantic_weight is None else float(semantic_weight),
                     DEFAULT_WEIGHT if lexical_weight is None else float(lexical_weight),
                     FUSION_OF_PROTO[fusion] if fusion else defaults.fusion,
                     defaults.alpha if alpha is None else float(alpha),
                     defaults.candidates if candidates is None else int(candidates))
        params.validate()
        return params

    def validate(self) -> None:
        if not 0 < self.rrf_k <= MAX_RRF_PARAM:  # NaN fails too
            raise InvalidArgument(f"hybrid.rrf_k must be > 0 and at most {MAX_RRF_PARAM:g}, got "
                                  f"{self.rrf_k}")
        for name in ("semantic_weight", "lexical_weight"):
            value = getattr(self, name)
            if not (value == 0 or 1 / MAX_RRF_PARAM <= value <= MAX_RRF_PARAM):
                raise InvalidArgument(f"hybrid.{name} must be 0 or from {1 / MAX_RRF_PARAM:g} to "
                                      f"{MAX_RRF_PARAM:g} (only the two weights' ratio matters), "
                                      f"got {value}")
        if self.semantic_weight == 0 and self.lexical_weight == 0:
            raise InvalidArgument("hybrid.semantic_weight and hybrid.lexical_weight are both 0: "
                                  "at least one must be > 0")
        if not 0 <= self.alpha <= 1:  # NaN fails too
            raise InvalidArgument(f"hybrid.alpha must be a number from 0 to 1, got {self.alpha}")
        if self.fusion not in FUSIONS:
            raise InvalidArgument(f"hybrid fusion must be one of {', '.join(FUSIONS)}, got "
                                  f"{self.fusion!r}")
        if not 0 <= self.candidates <= MAX_CANDIDATES:
            raise InvalidArgument(f"hybrid.candidates must be between 1 and {MAX_CANDIDATES}, got "
                                  f"{self.candidates}")


def candidate_depth(offset: int, k: int, n_allowed: int, candidates: int = 0) -> int:
    """How many rows to take from each ranking for hybrid (see the module docstring)."""
    if candidates:  # not raised with the offset: every page cuts the same fused list
        return min(n_allowed, max(candidates, k))
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


def _key_arrays(semantic_rows, lexical_rows) -> tuple[np.ndarray, np.ndarray]:
    sem, lex = np.asarray(semantic_rows), np.asarray(lexical_rows)
    if not lex.size:  # an empty list takes the other's key type (np.array([]) is float)
        lex = lex.astype(sem.dtype)
    elif not sem.size:
        sem = sem.astype(lex.dtype)
    return sem, lex


def rrf_scores(semantic_rows, lexical_rows, params: HybridParams) -> tuple[np.ndarray, np.ndarray]:
    """Fused (scores, rows) over every row present in either ranking, best first, ties by row.

    `semantic_rows` and `lexical_rows` are ranking keys in rank order (best first), each at most
    once: catalog rows, or any sortable keys of one dtype (a store's product ids).
    """
    sem, lex = _key_arrays(semantic_rows, lexical_rows)
    rows = np.union1d(sem, lex)  # sorted ascending: catalog order for ties
    scores = np.zeros(rows.size, dtype=np.float64)
    for ranking, weight in ((sem, params.semantic_weight), (lex, params.lexical_weight)):
        if ranking.size and weight:
            ranks = np.arange(1, ranking.size + 1, dtype=np.float64)
            scores[np.searchsorted(rows, ranking)] += weight / (params.rrf_k + ranks)
    return top_ranked(scores, rows, rows.size)


def minmax(scores, floor: float | None = None) -> np.ndarray:
    """Scores -> [0, 1] (float64): (s - low) / (max - low), low = min(scores), or `floor` when
    lower; all 1.0 when max == low (every score equal, one score)."""
    values = np.asarray(scores, dtype=np.float64)
    if not values.size:
        return values
    low, high = values.min(), values.max()
    if floor is not None:
        low = min(low, floor)
    if high == low:
        return np.ones_like(values)
    return (values - low) / (high - low)


def weighted_scores(semantic_rows, semantic_scores, lexical_rows, lexical_scores,
                    alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """alpha * minmax(semantic) + (1 - alpha) * minmax(lexical) over the union of both lists:
    (scores, rows), best first; ties: a candidate on the weightier side first, then lower row.
    A row missing from the lexical list shares no term with the query: its lexical score, 0,
    takes part in the lexical side's min-max (see the module docstring)."""
    sem, lex = _key_arrays(semantic_rows, lexical_rows)
    rows = np.union1d(sem, lex)
    scores = np.zeros(rows.size, dtype=np.float64)
    presence = np.zeros(rows.size, dtype=np.float64)  # the weights of the lists a row is in
    lexical_floor = 0.0 if lex.size < rows.size else None
    for ranking, side_scores, weight, floor in ((sem, semantic_scores, alpha, None),
                                                (lex, lexical_scores, 1.0 - alpha, lexical_floor)):
        if ranking.size:
            at = np.searchsorted(rows, ranking)
            scores[at] += weight * minmax(side_scores, floor)
            presence[at] += weight
    order = np.lexsort((-presence, -scores))  # stable: what still ties keeps ascending rows
    return scores[order], rows[order]


def fuse(semantic_rows, lexical_rows, params: HybridParams, semantic_scores=None,
         lexical_scores=None) -> tuple[np.ndarray, np.ndarray]:
    """The fused ranking by `params.fusion`: (scores, rows), best first. Weighted fusion needs
    each ranking's scores (aligned with its rows); RRF uses ranks only."""
    if params.fusion == "rrf":
        return rrf_scores(semantic_rows, lexical_rows, params)
    if semantic_scores is None or lexical_scores is None:
        raise ValueError("weighted fusion needs the scores of both rankings")
    return weighted_scores(semantic_rows, semantic_scores, lexical_rows, lexical_scores,
                           params.alpha)


def fuse_search(semantic_rows, lexical_rows, params: HybridParams, k: int, offset: int = 0,
                min_score: float | None = None, *, semantic_scores=None,
                lexical_scores=None) -> tuple[np.ndarray, np.ndarray]:
    """Fusion, then min_score, then the page [offset, offset + k): (scores, rows), best first.

    Hit ranks are offset + 1 .. offset + len(rows).
    """
    scores, rows = fuse(semantic_rows, lexical_rows, params, semantic_scores, lexical_scores)
    if min_score is not None:
        keep = scores >= min_score
        scores, rows = scores[keep], rows[keep]
    return scores[offset:offset + k], rows[offset:offset + k]
