"""Vector backends and filters: exact filtered top-k for flat, hnsw and ivf; filter masks."""
from __future__ import annotations

import csv

import faiss
import numpy as np
import pytest

from client.generated.recsys.v1 import index_pb2
from index_service import vectors
from index_service.catalog_reader import read_catalog
from index_service.filters import MAX_FILTER_VALUES, FilterSpec, allowed_mask, from_proto
from index_service.search import MAX_SIMILAR_IDS, _similar_ids
from servekit.errors import InvalidArgument


def embedding_like(n, d=64, rank=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, d)) + 0.3 * rng.normal(size=(n, d))
    return vectors.normalize(x)


@pytest.fixture(scope="module")
def data():
    return embedding_like(5000), embedding_like(20, seed=1)


@pytest.fixture(scope="module")
def built(data):
    """One index per backend, shared by the module's tests."""
    return {kind: vectors.create(kind, data[0].shape[1]).build(data[0])
            for kind in vectors.BACKENDS}


def reference(base, queries, k, allowed=None):
    rows = np.arange(len(base)) if allowed is None else np.flatnonzero(allowed)
    ref = faiss.IndexFlatIP(base.shape[1])
    ref.add(base[rows])
    scores, idx = ref.search(queries, k)
    return scores, rows[idx]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
@pytest.mark.parametrize("fraction", [None, 0.001, 0.01, 0.3, 0.9])
def test_filtered_search_is_exact_count(kind, fraction, data, built, tmp_path):
    base, queries = data
    index = built[kind]
    allowed = None
    if fraction is not None:
        allowed = np.random.default_rng(2).random(len(base)) < fraction
    k = 10
    scores, rows = index.search(queries, k, allowed)
    n_allowed = len(base) if allowed is None else int(allowed.sum())
    assert rows.shape == (len(queries), min(k, n_allowed))
    assert (rows >= 0).all()
    if allowed is not None:
        assert allowed[rows].all()
    ref_scores, ref_rows = reference(base, queries, min(k, n_allowed), allowed)
    if kind == "flat":
        np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    else:  # approximate, but nearly always right on this easy data
        recall = np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(rows, ref_rows)])
        assert recall >= 0.9
    # save / load keeps the answers
    index.save(tmp_path / "i.faiss")
    loaded = vectors.load(kind, tmp_path / "i.faiss", base)
    again_scores, again_rows = loaded.search(queries, k, allowed)
    np.testing.assert_array_equal(again_rows, rows)
    np.testing.assert_allclose(loaded.vector(7), base[7])


@pytest.mark.parametrize("allowed", [None, "all"])
def test_ivf_probing_too_few_clusters_still_returns_k_hits(data, built, allowed):
    """nprobe 1 of ~64 lists holds ~80 rows: k 200 gets 200 exact hits, unfiltered as filtered."""
    base, queries = data
    mask = None if allowed is None else np.ones(len(base), dtype=bool)
    scores, rows = built["ivf"].search(queries, 200, mask, {"nprobe": 1})
    assert rows.shape == (len(queries), 200) and (rows >= 0).all()
    np.testing.assert_allclose(scores, reference(base, queries, 200)[0], atol=1e-5)


def test_filter_with_no_match_and_k_above_matches(data, built):
    base, queries = data
    index = built["flat"]
    none = np.zeros(len(base), dtype=bool)
    assert index.search(queries, 5, none)[1].shape == (len(queries), 0)
    three = none.copy()
    three[[3, 99, 4000]] = True
    assert sorted(index.search(queries[:1], 10, three)[1][0]) == [3, 99, 4000]


def test_unknown_index_type():
    with pytest.raises(ValueError, match="unknown index type 'annoy'"):
        vectors.create("annoy", 8)


# --- filters ----------------------------------------------------------------------------------
@pytest.fixture
def catalog(tmp_path):
    path = tmp_path / "f.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["uniq_id", "title", "brand", "price", "categories"])
        w.writerow(["1", "Desk", "A", "10", "['Home', 'Furniture', 'Desks']"])
        w.writerow(["2", "Chair", "B", "20", "['Home', 'Furniture', 'Chairs']"])
        w.writerow(["3", "Lamp", "A", "30", "Home > Lighting"])
        w.writerow(["4", "Mug", "C", "", "Kitchen"])
    return read_catalog(path)[0]


def ids_of(catalog, mask):
    return [catalog.ids[i] for i in range(len(catalog))] if mask is None else \
        [catalog.ids[i] for i in np.flatnonzero(mask)]


def test_filter_masks(catalog):
    assert allowed_mask(catalog, FilterSpec()) is None
    assert ids_of(catalog, allowed_mask(catalog, FilterSpec(categories=("Furniture",)))) == ["1", "2"]
    assert ids_of(catalog, allowed_mask(catalog, FilterSpec(categories=("Home",)))) == ["1", "2", "3"]
    assert ids_of(catalog, allowed_mask(catalog, FilterSpec(categories=("home",)))) == []
    assert ids_of(catalog, allowed_mask(catalog, FilterSpec(categories=("Chairs", "Kitchen")))) == ["2", "4"]
    assert ids_of(catalog, allowed_mask(catalog, FilterSpec(brands=("A",)))) == ["1", "3"]
    assert ids_of(catalog, allowed_mask(catalog, FilterSpec(brands=("A",), min_price=15))) == ["3"]
    # the Mug's price is the median (20)
    assert ids_of(catalog, allowed_mask(catalog, FilterSpec(min_price=20, max_price=20))) == ["2", "4"]
    live = np.array([True, False, True, True])
    assert ids_of(catalog, allowed_mask(catalog, FilterSpec(brands=("A", "B")), live)) == ["1", "3"]


def test_filter_validation():
    spec = from_proto(index_pb2.Filter(categories=["X"], min_price=1, max_price=2))
    assert spec == FilterSpec(categories=("X",), min_price=1.0, max_price=2.0)
    assert from_proto(index_pb2.Filter()).empty
    assert from_proto(index_pb2.Filter(min_price=0)).min_price == 0.0  # explicit zero is set
    with pytest.raises(InvalidArgument, match="min_price .* greater than filter.max_price"):
        from_proto(index_pb2.Filter(min_price=5, max_price=1))
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(InvalidArgument, match="finite"):
            from_proto(index_pb2.Filter(max_price=bad))


def test_filter_value_lists_are_bounded():
    """3 million categories and brands in one request (58 MB) took the index from 0.3 to 1 GB."""
    ok = [f"c{i}" for i in range(MAX_FILTER_VALUES)]
    assert len(from_proto(index_pb2.Filter(categories=ok, brands=ok)).categories) == len(ok)
    for name in ("categories", "brands"):
        with pytest.raises(InvalidArgument, match=f"filter.{name} holds 1001 values; at most 1000"):
            from_proto(index_pb2.Filter(**{name: ok + ["one more"]}))


def test_similar_ids_refuses_a_flood_of_repeats_before_any_work():
    assert _similar_ids("", ["a"] * (MAX_SIMILAR_IDS * 10)) == ["a"]
    with pytest.raises(InvalidArgument, match="at most 100 distinct and 1000 in all"):
        _similar_ids("", ["a"] * (MAX_SIMILAR_IDS * 10 + 1))


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_with_added_copies(kind, data, built):
    base, _ = data
    index = built[kind]
    extra = embedding_like(3, seed=9)
    bigger = index.with_added(extra)
    assert (index.ntotal, bigger.ntotal) == (len(base), len(base) + 3)
    _, rows = bigger.search(extra, 1)
    assert rows[:, 0].tolist() == [len(base), len(base) + 1, len(base) + 2]
    np.testing.assert_allclose(bigger.vector(len(base) + 1), extra[1])
    mask = np.zeros(bigger.ntotal, dtype=bool)
    mask[-3:] = True
    assert sorted(bigger.search(extra[:1], 5, mask)[1][0].tolist()) == [len(base), len(base) + 1, len(base) + 2]


# ---- live writes: appended rows in an exact layer on top of the built index ----------------------
def test_appended_rows_share_the_built_index_and_search_as_one(data, built):
    base, queries = data
    index = built["flat"]
    extra = embedding_like(300, seed=11)
    layered = index.with_added(extra[:100]).with_added(extra[100:])
    assert layered.base is index and layered.ntotal == len(base) + 300  # nothing of the index copied
    everything = np.concatenate([base, extra])
    np.testing.assert_array_equal(layered.vectors, everything)
    np.testing.assert_allclose(layered.vector(len(base) + 7), extra[7])
    np.testing.assert_allclose(layered.vector(3), base[3])
    queries = np.concatenate([queries, extra[:5]])  # some queries whose best hit is a new row
    for allowed in (None, np.arange(len(everything)) % 3 == 0,
                    np.arange(len(everything)) >= len(base),         # only new rows
                    np.arange(len(everything)) < len(base) - 4000):  # only old rows
        scores, rows = layered.search(queries, 10, allowed)
        ref_scores, ref_rows = reference(everything, queries, 10, allowed)
        np.testing.assert_array_equal(rows, ref_rows)
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-6)


def test_few_allowed_rows_pad_with_minus_one(data, built):
    base, queries = data
    layered = built["hnsw"].with_added(embedding_like(4, seed=12))
    allowed = np.zeros(layered.ntotal, dtype=bool)
    allowed[[5, len(base) + 2]] = True
    _, rows = layered.search(queries[:2], 5, allowed)
    for row_list in rows.tolist():
        assert sorted(r for r in row_list if r >= 0) == [5, len(base) + 2]


def test_a_layer_past_its_limit_is_folded_into_a_copy(data, built, monkeypatch):
    from index_service.vectors import layered as layered_module
    monkeypatch.setattr(layered_module, "MAX_LAYER_ROWS", 50)
    base, _ = data
    extra = embedding_like(60, seed=13)
    small = built["ivf"].with_added(extra[:40])
    assert isinstance(small, layered_module.LayeredIndex)
    folded = small.with_added(extra[40:])
    assert not isinstance(folded, layered_module.LayeredIndex) and folded.kind == "ivf"
    assert folded.ntotal == len(base) + 60 and built["ivf"].ntotal == len(base)
    _, rows = folded.search(extra[55:56], 1)
    assert rows[0, 0] == len(base) + 55


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_take_copies_the_rows_asked_for_across_the_layer(kind, data, built):
    base, _ = data
    extra = embedding_like(7, seed=14)
    layered = built[kind].with_added(extra)
    everything = np.concatenate([base, extra])
    rows = np.array([0, 4999, 5000, 5006, 17, 5003])
    np.testing.assert_allclose(layered.take(rows), everything[rows], rtol=1e-6)
    np.testing.assert_allclose(layered.take(rows[:2]), everything[:5000][rows[:2]], rtol=1e-6)
    np.testing.assert_allclose(built[kind].take(rows[:2]), base[rows[:2]], rtol=1e-6)
