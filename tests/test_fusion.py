"""Reciprocal rank fusion and ranking helpers, with answers computed by hand."""
import math

import numpy as np
import pytest

from index_service.fusion import (FULL_RANKING_MAX, HybridParams, candidate_depth, fuse_search,
                                  rrf_scores, top_ranked)
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
    assert HybridParams.from_request() == HybridParams(60.0, 1.0, 1.0)
    assert HybridParams.from_request(rrf_k=10) == HybridParams(10.0, 1.0, 1.0)


@pytest.mark.parametrize("kwargs, field", [
    ({"rrf_k": 0}, "rrf_k"), ({"rrf_k": -1}, "rrf_k"), ({"rrf_k": math.nan}, "rrf_k"),
    ({"rrf_k": math.inf}, "rrf_k"), ({"semantic_weight": -0.5}, "semantic_weight"),
    ({"lexical_weight": math.nan}, "lexical_weight"), ({"lexical_weight": math.inf}, "lexical_weight"),
    ({"semantic_weight": 0, "lexical_weight": 0}, "both 0"),
])
def test_bad_params_are_invalid_argument(kwargs, field):
    with pytest.raises(InvalidArgument, match=field):
        HybridParams.from_request(**kwargs)


def test_candidate_depth():
    assert candidate_depth(0, 10, 305) == 305
    assert candidate_depth(0, 10, FULL_RANKING_MAX) == FULL_RANKING_MAX
    assert candidate_depth(0, 10, 50_000) == FULL_RANKING_MAX
    assert candidate_depth(200, 100, 50_000) == 3000
    assert candidate_depth(0, 500, FULL_RANKING_MAX + 1) == FULL_RANKING_MAX + 1


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
