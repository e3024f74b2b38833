"""Copy-on-write writes on the served snapshot (the path live updates plug into), in-process."""
from __future__ import annotations

import numpy as np
import pytest

from index_service import vectors
from index_service.catalog import Catalog
from index_service.catalog_reader import read_catalog
from index_service.catalog_updates import select
from index_service.filters import FilterSpec
from index_service.lexical import LexicalIndex
from index_service.faiss_store import FaissStore
from index_service.search import SearchCore
from index_service.snapshot import ServedState, Snapshot
from index_service.store import StoreHolder, encode_page_token
from servekit.errors import InvalidArgument, NotFound
from tests.test_index_support import TINY_ROWS, write_tiny_csv

DIM = 16


@pytest.fixture
def core(tmp_path):
    catalog, _ = read_catalog(write_tiny_csv(tmp_path / "tiny.csv"))
    vecs = vectors.normalize(np.random.default_rng(0).normal(size=(len(catalog), DIM)))
    snap = Snapshot(catalog=catalog, vectors=vectors.create("flat", DIM).build(vecs),
                    lexical=LexicalIndex().fit(catalog.search_texts()),
                    manifest={"model_name": "m", "index_type": "flat", "catalog_sha256": "x",
                              "built_at": "t"})
    state = ServedState()
    state.swap(snap)
    core = SearchCore(StoreHolder(FaissStore(state, writer=None, wal=None, compactor=None)),
                      embedder=None, max_k=100, max_batch_products=10)
    core.state = state  # the tests publish snapshots on it, as a writer would
    return core


def ids(core, ranking):
    return [p["id"] for p in ranking.products]


def by_vector(core, v, k=3, spec=FilterSpec()):
    return core.search(query="", vector=list(v), k=k, spec=spec, mode=1, min_score=None, offset=0,
                       hybrid=None, timeout=None)


def all_ids(core):
    return [p["id"] for p in core.list(1000, "").products]


def test_upserts_add_and_replace_without_touching_the_old_snapshot(core):
    old = core.state.snapshot
    new_vecs = vectors.normalize(np.random.default_rng(1).normal(size=(3, DIM)))
    products = [
        {"id": "n1", "title": "Teak garden bench", "brand": "Outdoorsy", "price": 120.0,
         "categories": ["Garden", "Benches"], "attributes": {"size": "L"}},
        {"id": "t01", "title": "Oak writing desk, new edition", "brand": "Woodline", "price": None,
         "categories": ["Home", "Furniture", "Office Furniture", "Desks"]},
        {"id": "n1", "title": "Teak garden bench v2", "brand": "Outdoorsy", "price": 125.0,
         "categories": ["Garden", "Benches"], "images": [" http://x/b.jpg "],
         "attributes": {"size": "XL"}},
    ]
    core.state.swap(old.with_upserts(products, new_vecs, sequence=1))
    snap = core.state.snapshot
    assert snap.product_count == len(TINY_ROWS) + 1 and snap.sequence == 1
    product = core.get("n1")
    assert product["title"] == "Teak garden bench v2" and product["price"] == 125.0  # last in batch
    assert product["category"] == "Benches" and product["images"] == ["http://x/b.jpg"]
    assert product["attributes"]["size"] == "XL"
    assert core.get("t01")["title"] == "Oak writing desk, new edition"
    assert core.get("t01")["price"] == snap.catalog.median_price
    # the old snapshot still answers as before (calls in flight keep their view)
    assert old.catalog.product(old.row_of("t01"))["title"] == "Oak writing desk"
    assert old.row_of("n1") is None and old.product_count == len(TINY_ROWS)
    # search sees the new vectors, filters see the new vocabularies, no id twice
    assert ids(core, by_vector(core, new_vecs[2], k=1)) == ["n1"]
    assert ids(core, by_vector(core, new_vecs[1], k=1)) == ["t01"]
    assert ids(core, by_vector(core, new_vecs[2], k=5, spec=FilterSpec(categories=("Garden",)))) == ["n1"]
    assert ids(core, by_vector(core, new_vecs[2], k=5, spec=FilterSpec(brands=("Outdoorsy",)))) == ["n1"]
    listed = all_ids(core)
    assert len(listed) == len(set(listed)) == len(TINY_ROWS) + 1
    similar = core.similar(product_id="t01", k=20, spec=FilterSpec(), min_score=None, offset=0)
    assert "t01" not in ids(core, similar) and len(similar.products) == len(TINY_ROWS)


def _like(core, basket, spec=FilterSpec()):
    return core.similar(product_id="", product_ids=basket, k=len(TINY_ROWS), spec=spec,
                        min_score=None, offset=0)


def test_a_basket_is_ranked_by_its_mean_direction_and_never_returned(core):
    basket = ["t01", "t03", "t05"]
    snap = core.state.snapshot
    mean = np.mean([snap.vectors.vector(snap.row_of(pid)) for pid in basket], axis=0)
    expected = by_vector(core, mean / np.linalg.norm(mean), k=len(TINY_ROWS))
    liked = _like(core, basket)
    assert ids(core, liked) == [pid for pid in ids(core, expected) if pid not in basket]
    np.testing.assert_allclose(liked.scores, expected.scores[[pid not in basket for pid in
                                                               ids(core, expected)]], atol=1e-6)
    lamps = _like(core, basket, spec=FilterSpec(categories=("Lamps",)))  # a filter: rows masked
    assert ids(core, lamps) == ["t06"]
    core.state.swap(snap.with_deletes(["t03"], sequence=1)[0])
    with pytest.raises(NotFound, match="no product with id 't03'"):
        _like(core, basket)
    with pytest.raises(NotFound, match="no products with ids 'a', 'b', 'c', 'd', 'e' and 1 more"):
        _like(core, ["t01", "a", "b", "c", "d", "e", "f"])


def test_a_basket_whose_vectors_cancel_out_is_invalid(core):
    snap = core.state.snapshot
    v = snap.vectors.vector(snap.row_of("t01"))
    core.state.swap(snap.with_upserts([{"id": "anti", "title": "Anti desk"}], -v[None, :], 1))
    with pytest.raises(InvalidArgument, match="cancel out"):
        _like(core, ["t01", "anti"])

def test_deletes_hide_products_everywhere(core):
    snap, not_found = core.state.snapshot.with_deletes(["t02", "zz"], sequence=7)
    core.state.swap(snap)
    assert not_found == ["zz"] and snap.product_count == len(TINY_ROWS) - 1
    with pytest.raises(NotFound):
        core.get("t02")
    v = snap.vectors.vector(snap.catalog.row_of("t02"))
    assert "t02" not in ids(core, by_vector(core, v, k=len(TINY_ROWS)))
    assert "t02" not in all_ids(core) and core.state.snapshot.sequence == 7
    again, not_found = snap.with_deletes(["t02"], sequence=8)
    assert not_found == ["t02"]


def test_compaction_selects_live_rows_and_saves(core, tmp_path):
    vecs = vectors.normalize(np.ones((1, DIM)))
    snap = core.state.snapshot.with_upserts([{"id": "t03", "title": "Chair v2", "brand": "New"}], vecs, 1)
    snap, _ = snap.with_deletes(["t04"], 2)
    rows = snap.live_rows()
    compact = select(snap.catalog, rows)
    compact.save(tmp_path / "cat")
    loaded = Catalog.load(tmp_path / "cat")
    expected = [snap.catalog.product(int(r)) for r in rows]
    assert [loaded.product(i) for i in range(len(loaded))] == expected
    assert loaded.product(loaded.row_of("t03"))["title"] == "Chair v2"
    assert loaded.row_of("t04") is None and len(loaded) == len(TINY_ROWS) - 1
    np.testing.assert_allclose(snap.vectors.vectors[rows][-1], vecs[0])


def test_page_tokens_go_through_and_edited_ones_are_invalid_argument(core):
    first = core.list(3, "")
    assert len(first.products) == 3 and first.next_page_token
    rest = core.list(1000, first.next_page_token).products
    assert [p["id"] for p in first.products + rest] == all_ids(core)
    # "²" and "١" (Arabic-Indic one) pass str.isdigit(); int() refuses "²" and reads "١" as 1
    for edited in ("²", "١", "-1", " 3", "3x"):
        with pytest.raises(InvalidArgument, match="page_token"):
            core.list(3, encode_page_token("p1:", edited))
