"""Reciprocal rank fusion, weighted fusion of min-max normalized scores, their parameters, and
the ranking helpers, with answers computed by hand."""
import math

import numpy as np
import pytest

from index_service.fusion import (FULL_RANKING_MAX, MAX_CANDIDATES, HybridDefaults, HybridParams,
                                  candidate_depth, fuse, fuse_search, minmax, rrf_scores,
                                  top_ranked, weighted_scores)
from servekit.errors import InvalidArgument

DEFAULT = HybridParams()


def test_rrf_known_by_hand():
    scores, rows = rrf_scores([3, 1, 2], [1, 0], DEFAULT)
    # row 1: 1/62 + 1/61, row 3: 1/61, row 0: 1/62, row 2: 1/63
    assert rows.tolist() == [1, 3, 0, 2]
    np.testing.assert_allclose(scores, [1 / 62 + 1 / 61, 1 / 61, 1 / 62, 1 / 63])


def test_ties_keep_catalog_order():
    for sem, lex in (([0, 1], [1, 0]), ([1, 0], [0, 1])):
        scores, rows = rrf_scores(sem, lex, DEFAULT)
        assert rows.tolist() == [0, 1] and scores[0] == scores[1]
    _, rows = rrf_scores([5, 2], [], DEFAULT)
    assert rows.tolist() == [5, 2]
    _, rows = rrf_scores([], [], DEFAULT)
    assert rows.tolist() == []


def test_rrf_k_and_weights():
    params = HybridParams.from_request(rrf_k=1, semantic_weight=2, lexical_weight=1)
    scores, rows = rrf_scores([0, 1], [1], params)
    # row 0: 2/(1+1) = 1; row 1: 2/(1+2) + 1/(1+1) = 7/6
    assert rows.tolist() == [1, 0]
    np.testing.assert_allclose(scores, [7 / 6, 1.0])
    lexical_only = HybridParams.from_request(semantic_weight=0)
    scores, rows = rrf_scores([2, 0, 1], [1, 0], lexical_only)
    assert rows.tolist() == [1, 0, 2] and scores[2] == 0


def test_fuse_search_pages_and_min_score():
    sem, lex = [3, 1, 2], [1, 0]  # fused: 1, 3, 0, 2
    assert fuse_search(sem, lex, DEFAULT, k=2)[1].tolist() == [1, 3]
    assert fuse_search(sem, lex, DEFAULT, k=2, offset=2)[1].tolist() == [0, 2]
    assert fuse_search(sem, lex, DEFAULT, k=2, offset=4)[1].tolist() == []
    assert fuse_search(sem, lex, DEFAULT, k=10, min_score=1 / 62)[1].tolist() == [1, 3, 0]
    assert fuse_search(sem, lex, DEFAULT, k=10, offset=1, min_score=1 / 62)[1].tolist() == [3, 0]


def test_defaults():
    assert HybridParams.from_request() == HybridParams(60.0, 1.0, 1.0, "rrf", 0.5, 0)
    assert HybridParams.from_request(rrf_k=10) == HybridParams(10.0, 1.0, 1.0)


def test_the_services_defaults_fill_what_a_request_leaves_unset():
    defaults = HybridDefaults(fusion="weighted", alpha=0.3, candidates=50)
    params = HybridParams.from_request(defaults=defaults)
    assert (params.fusion, params.alpha, params.candidates) == ("weighted", 0.3, 50)
    params = HybridParams.from_request(fusion=0, alpha=None, defaults=defaults)  # 0: unspecified
    assert params.fusion == "weighted"
    params = HybridParams.from_request(fusion=1, alpha=0.9, candidates=7, defaults=defaults)
    assert (params.fusion, params.alpha, params.candidates) == ("rrf", 0.9, 7)
    assert HybridParams.from_request(fusion=2).fusion == "weighted"


@pytest.mark.parametrize("kwargs, field", [
    ({"rrf_k": 0}, "rrf_k"), ({"rrf_k": -1}, "rrf_k"), ({"rrf_k": math.nan}, "rrf_k"),
    ({"rrf_k": math.inf}, "rrf_k"), ({"semantic_weight": -0.5}, "semantic_weight"),
    ({"lexical_weight": math.nan}, "lexical_weight"), ({"lexical_weight": math.inf}, "lexical_weight"),
    ({"semantic_weight": 0, "lexical_weight": 0}, "both 0"),
    ({"semantic_weight": 1e300}, "semantic_weight"), ({"lexical_weight": 5e-324}, "lexical_weight"),
    ({"rrf_k": 1e300}, "rrf_k"),
    ({"alpha": -0.1}, "alpha"), ({"alpha": 1.0001}, "alpha"), ({"alpha": math.nan}, "alpha"),
    ({"alpha": math.inf}, "alpha"), ({"fusion": 3, "alpha": 0.5}, "not a Fusion"),
    ({"fusion": -1}, "not a Fusion"), ({"candidates": 0}, "candidates"),
    ({"candidates": -5}, "candidates"), ({"candidates": MAX_CANDIDATES + 1}, "candidates"),
    # Set fields are checked whichever fusion runs.
    ({"fusion": 1, "alpha": 2.0}, "alpha"), ({"fusion": 2, "rrf_k": 0}, "rrf_k"),
])
def test_bad_params_are_invalid_argument(kwargs, field):
    with pytest.raises(InvalidArgument, match=field):
        HybridParams.from_request(**kwargs)


def test_the_bounds_of_the_rrf_parameters_are_accepted():
    for value in (1e-6, 1e6):
        HybridParams.from_request(rrf_k=value, semantic_weight=value, lexical_weight=0)


def test_candidate_depth():
    assert candidate_depth(0, 10, 305, candidates=50) == 50
    assert candidate_depth(0, 100, 305, candidates=50) == 100  # raised to k
    assert candidate_depth(40, 20, 305, candidates=50) == 50   # not with the offset: one list
    assert candidate_depth(140, 20, 305, candidates=50) == 50
    assert candidate_depth(0, 10, 30, candidates=50) == 30
    assert candidate_depth(0, 10, 50_000, candidates=20_000) == 20_000
    assert candidate_depth(0, 10, 305) == 305
    assert candidate_depth(0, 10, FULL_RANKING_MAX) == FULL_RANKING_MAX
    assert candidate_depth(0, 10, 50_000) == FULL_RANKING_MAX
    assert candidate_depth(200, 100, 50_000) == 3000
    assert candidate_depth(0, 500, FULL_RANKING_MAX + 1) == FULL_RANKING_MAX + 1


@pytest.mark.parametrize("fusion", ["rrf", "weighted"])
def test_pages_of_a_set_candidate_depth_cut_one_fused_list(fusion):
    """Paging with candidates C and page size k: the pages, joined, are the first page of one
    request for all of them (no product twice, none skipped), and end where the union ends."""
    rng = np.random.default_rng(3)
    semantic, lexical = rng.permutation(300), rng.permutation(300)[:120]
    sem_scores = np.sort(rng.random(300))[::-1]
    lex_scores = np.sort(rng.random(120))[::-1]
    params = HybridParams(fusion=fusion, candidates=15)

    def page(offset, k):
        depth = candidate_depth(offset, k, 300, params.candidates)
        return fuse_search(semantic[:depth], lexical[:depth], params, k, offset,
                           semantic_scores=sem_scores[:depth], lexical_scores=lex_scores[:depth])[1]

    pages = np.concatenate([page(offset, 10) for offset in range(0, 60, 10)])
    union = len(set(semantic[:15]) | set(lexical[:15]))
    assert len(pages) == len(set(pages.tolist())) == union
    assert pages[:union].tolist() == fuse_search(semantic[:15], lexical[:15], params, 100,
                                                 semantic_scores=sem_scores[:15],
                                                 lexical_scores=lex_scores[:15])[1].tolist()


def test_top_ranked_is_exact_at_tie_boundaries():
    scores, rows = top_ranked(np.array([0.5, 1.0, 0.5, 0.5, 0.2]), np.arange(5), 2)
    assert rows.tolist() == [1, 0] and scores.tolist() == [1.0, 0.5]
    _, rows = top_ranked(np.array([0.5, 0.5, 0.5]), np.array([2, 7, 9]), 2)
    assert rows.tolist() == [2, 7]
    assert top_ranked(np.array([1.0]), np.array([0]), 0)[1].tolist() == []


def test_top_ranked_matches_a_full_stable_sort():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=500).astype(np.float64)  # many ties
    rows = np.sort(rng.choice(10_000, size=500, replace=False))
    expected = rows[np.lexsort((rows, -scores))]
    for n in (1, 7, 100, 499, 500, 600):
        assert top_ranked(scores, rows, n)[1].tolist() == expected[:n].tolist()


# ---- weighted fusion ---------------------------------------------------------------------------

def test_minmax_edge_cases():
    np.testing.assert_allclose(minmax([0.9, 0.5, 0.1]), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(minmax([4.0, 2.0], floor=0.0), [1.0, 0.5])  # low: the floor
    np.testing.assert_allclose(minmax([4.0, 2.0], floor=3.0), [1.0, 0.0])  # low: the minimum
    assert minmax([2.0], floor=0.0).tolist() == [1.0]
    assert minmax(np.array([0.25], dtype=np.float32)).tolist() == [1.0]  # one candidate: a match
    assert minmax([3.0, 3.0, 3.0]).tolist() == [1.0, 1.0, 1.0]        # all equal: each a match
    assert minmax([]).tolist() == []


def test_weighted_known_by_hand():
    # semantic (min-max over its list) 3: 1, 1: 0.5, 2: 0; lexical: rows 2 and 3 share no term
    # (score 0), so its low is 0: 1: 2/2 = 1, 0: 1/2 = 0.5
    scores, rows = weighted_scores([3, 1, 2], [0.9, 0.5, 0.1], [1, 0], [2.0, 1.0], 0.5)
    assert rows.tolist() == [1, 3, 0, 2]  # 1: .25 + .5, 3: .5, 0: .25, 2: 0
    np.testing.assert_allclose(scores, [0.75, 0.5, 0.25, 0.0])
    scores, rows = weighted_scores([3, 1, 2], [0.9, 0.5, 0.1], [1, 0], [2.0, 1.0], 0.2)
    assert rows.tolist() == [1, 0, 3, 2]  # 1: .1 + .8, 0: .4, 3: .2, 2: 0
    np.testing.assert_allclose(scores, [0.9, 0.4, 0.2, 0.0])
    # 0 and 2 both fused to 0: the one in the weightier list (lexical, .8) first
    _, rows = weighted_scores([3, 2], [0.9, 0.1], [3, 0], [1.0, 1.0], 0.2)
    assert rows.tolist() == [3, 0, 2]


def test_the_weakest_lexical_match_stays_above_a_row_with_no_match():
    """Min-max over the matches alone would send the weakest match to 0, like a non-match."""
    sem, sem_scores = [5, 7, 6], [0.9, 0.5, 0.3]         # 5 shares no term with the query
    lex, lex_scores = [6, 7], [0.40, 0.39]
    _, rows = weighted_scores(sem, sem_scores, lex, lex_scores, 0.1)
    # 7: .1 x 1/3 + .9 x .39/.40, 6: .9, 5: .1 (over the matches alone 7 would get .1 x 1/3 only)
    assert rows.tolist() == [7, 6, 5]
    # when every row of the union matches, the lexical side is min-max over its list
    scores, rows = weighted_scores([1, 2], [0.5, 0.5], [1, 2], [0.40, 0.39], 0.0)
    assert rows.tolist() == [1, 2] and scores.tolist() == [1.0, 0.0]


def test_a_product_in_one_list_only_scores_zero_on_the_other_side():
    scores, rows = weighted_scores([0, 1], [0.8, 0.4], [2], [5.0], 0.6)
    # 0: .6, 2: .4 x 1 (its list's only candidate: 1), 1: 0
    assert rows.tolist() == [0, 2, 1]
    np.testing.assert_allclose(scores, [0.6, 0.4, 0.0])


def test_equal_fused_scores_tie_by_key():
    for sem, lex in (([0, 1], [1, 0]), ([1, 0], [0, 1])):
        scores, rows = weighted_scores(sem, [1.0, 0.0], lex, [1.0, 0.0], 0.5)
        assert rows.tolist() == [0, 1] and scores.tolist() == [0.5, 0.5]
    scores, rows = weighted_scores([7, 2, 5], [0.5, 0.5, 0.5], [], [], 0.4)
    assert rows.tolist() == [2, 5, 7] and scores.tolist() == [0.4] * 3


def test_alpha_1_and_0_reduce_to_the_single_rankings():
    sem, sem_scores = [3, 1, 2], [0.9, 0.5, 0.1]
    lex, lex_scores = [1, 0, 5], [3.0, 2.0, 1.0]
    # alpha 1: the semantic order, then the rows only the lexical list has (key order)
    assert weighted_scores(sem, sem_scores, lex, lex_scores, 1.0)[1].tolist() == [3, 1, 2, 0, 5]
    # alpha 0: the lexical order, then the rest in key order (MODE_LEXICAL pads with zero-score
    # rows in catalog order)
    assert weighted_scores(sem, sem_scores, lex, lex_scores, 0.0)[1].tolist() == [1, 0, 5, 2, 3]


def test_alpha_1_and_0_orders_hold_on_random_rankings_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(1, 60))
        keys = rng.choice(1000, size=n, replace=False)
        sem_scores = rng.integers(0, 6, size=n) / 5.0  # many ties
        sem = keys[np.lexsort((keys, -sem_scores))]    # a store's order: score, then lower key
        sem_scores = np.sort(sem_scores)[::-1]
        lex_pool = np.concatenate([rng.choice(keys, size=n // 2, replace=False),
                                   rng.choice(np.arange(1000, 1100), size=3, replace=False)])
        lex_scores = rng.integers(1, 4, size=lex_pool.size).astype(float)
        lex = lex_pool[np.lexsort((lex_pool, -lex_scores))]
        lex_scores = np.sort(lex_scores)[::-1]
        rest = lambda ranking, other: sorted(set(other.tolist()) - set(ranking.tolist()))  # noqa: E731
        _, rows = weighted_scores(sem, sem_scores, lex, lex_scores, 1.0)
        assert rows.tolist() == sem.tolist() + rest(sem, lex)
        _, rows = weighted_scores(sem, sem_scores, lex, lex_scores, 0.0)
        assert rows.tolist() == lex.tolist() + rest(lex, sem)


def test_weighted_fusion_is_scale_free():
    """BM25 (unbounded) and TF-IDF (cosine) fuse alike: each side's scale drops out (lexical scores
    share their zero, no shared term; the semantic side's offset drops out too)."""
    sem, sem_scores, lex, lex_scores = [4, 2, 9, 1], [0.7, 0.6, 0.3, 0.2], [9, 4, 3], [0.5, 0.4, 0.1]
    base = weighted_scores(sem, sem_scores, lex, lex_scores, 0.3)
    scaled = weighted_scores(sem, [5 * s - 2 for s in sem_scores], lex, [87 * s for s in lex_scores],
                             0.3)
    assert base[1].tolist() == scaled[1].tolist()
    np.testing.assert_allclose(base[0], scaled[0])


def test_weighted_fusion_with_empty_lists_and_string_keys():
    scores, rows = weighted_scores([], [], [], [], 0.5)
    assert rows.tolist() == [] and scores.tolist() == []
    scores, rows = weighted_scores(["b", "a"], [0.9, 0.1], [], [], 0.5)  # Milvus: product ids
    assert rows.tolist() == ["b", "a"] and scores.tolist() == [0.5, 0.0]
    scores, rows = weighted_scores([], [], ["c", "a"], [2.0, 1.0], 0.5)
    assert rows.tolist() == ["c", "a"]


def test_fuse_search_weighted_pages_and_min_score():
    weighted = HybridParams.from_request(fusion=2, alpha=0.5)
    sem, sem_scores, lex, lex_scores = [3, 1, 2], [0.9, 0.5, 0.1], [1, 0], [2.0, 1.0]
    page = dict(semantic_scores=sem_scores, lexical_scores=lex_scores)
    assert fuse_search(sem, lex, weighted, k=2, **page)[1].tolist() == [1, 3]
    assert fuse_search(sem, lex, weighted, k=2, offset=2, **page)[1].tolist() == [0, 2]
    scores, rows = fuse_search(sem, lex, weighted, k=10, min_score=0.5, **page)
    assert rows.tolist() == [1, 3] and scores.tolist() == [0.75, 0.5]
    assert fuse_search(sem, lex, weighted, k=10, offset=1, min_score=0.5, **page)[1].tolist() == [3]
    with pytest.raises(ValueError, match="scores"):
        fuse(sem, lex, weighted)
    # RRF ignores the scores it is given
    rrf = rrf_scores(sem, lex, DEFAULT)[1].tolist()
    assert fuse(sem, lex, DEFAULT, sem_scores, lex_scores)[1].tolist() == rrf
