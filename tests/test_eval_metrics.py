"""Evaluation metrics on a tiny hand-made catalog whose answers are worked out by hand."""
import pytest

from client.eval_metrics import (evaluate_mode, metric_keys, parse_ks, product_metrics,
                                 query_depth, relevant_sets)

# a, b, c: chairs; d, e: tables; f: the only lamp; g: no category.
CATEGORIES = {"a": "Chairs", "b": "Chairs", "c": "Chairs", "d": "Tables", "e": "Tables",
              "f": "Lamps", "g": ""}
HITS = {
    "a": ["a", "b", "d", "c"],  # self@1; rest b,d,c: p@1 1, p@2 1/2, r@1 1/2, r@2 1/2, mrr 1
    "b": ["d", "b", "a"],       # self@2 only; rest d,a: p@1 0, p@2 1/2, r@2 1/2, mrr 1/2
    "c": ["d", "e", "f"],       # nothing: all 0
    "d": ["d", "e"],            # rest e: p@1 1, p@2 1/2 (one hit kept, still / K), r 1, mrr 1
    "e": ["a", "b", "c", "f", "g", "x1", "x2", "x3", "x4", "x5", "d"],  # d is 11th: mrr 0
    "f": ["f"],                 # alone in its category: self-retrieval only
    "g": ["a"],                 # no category: self-retrieval only
}
KS = (1, 2)


def test_one_product_known_by_hand():
    m = product_metrics("b", HITS["b"], frozenset({"a", "c"}), KS)
    assert m.self_retrieval == {1: 0.0, 2: 1.0}
    assert m.precision == {1: 0.0, 2: 0.5}
    assert m.recall == {1: 0.0, 2: 0.5}
    assert m.mrr == 0.5
    lone = product_metrics("f", HITS["f"], frozenset(), KS)
    assert lone.self_retrieval == {1: 1.0, 2: 1.0}
    assert lone.precision is None and lone.recall is None and lone.mrr is None


def test_relevant_sets_exclude_the_product_and_empty_categories():
    relevant = relevant_sets(CATEGORIES)
    assert relevant["a"] == {"b", "c"} and relevant["d"] == {"e"}
    assert relevant["f"] == frozenset() and relevant["g"] == frozenset()


def test_catalog_means_known_by_hand():
    result = evaluate_mode(CATEGORIES, HITS, KS)
    assert result.products == 7 and result.category_products == 5
    expected = {
        "self_retrieval@1": 3 / 7, "self_retrieval@2": 4 / 7,
        "precision@1": 2 / 5, "precision@2": 1.5 / 5,
        "recall@1": 1.5 / 5, "recall@2": 2 / 5,
        "mrr@10": 2.5 / 5,
    }
    assert result.metrics.keys() == expected.keys()
    for key, value in expected.items():
        assert result.metrics[key] == pytest.approx(value), key


def test_no_category_peers_gives_none():
    result = evaluate_mode({"a": "X", "b": "Y"}, {"a": ["a", "b"], "b": ["a"]}, (1,))
    assert result.metrics["self_retrieval@1"] == 0.5
    assert result.metrics["precision@1"] is None and result.metrics["mrr@10"] is None
    assert result.category_products == 0


def test_keys_and_depth():
    assert metric_keys((1, 5)) == ["self_retrieval@1", "self_retrieval@5", "precision@1",
                                   "precision@5", "recall@1", "recall@5", "mrr@10"]
    assert query_depth((1, 5, 10)) == 11
    assert query_depth((1, 5)) == 11  # MRR@10 needs 10 hits besides the product itself
    assert query_depth((20,)) == 21


def test_parse_ks():
    assert parse_ks("10,1,5,5") == (1, 5, 10)
    assert parse_ks(" 3 ") == (3,)
    for bad in ("", "0,5", "a,b", "1.5", "-1"):
        with pytest.raises(ValueError, match="--k"):
            parse_ks(bad)


def test_a_subset_of_queries_keeps_the_whole_catalogs_relevance():
    result = evaluate_mode(CATEGORIES, {"a": HITS["a"], "d": HITS["d"]}, KS, queries=["a", "d"])
    assert result.products == 2 and result.category_products == 2
    # a: p@2 1/2 (b of its 2 peers b, c); d: p@2 1/2
    assert result.metrics["precision@2"] == pytest.approx(0.5)
    assert result.metrics["recall@1"] == pytest.approx((1 / 2 + 1) / 2)
