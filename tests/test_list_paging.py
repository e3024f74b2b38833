"""ListProducts page tokens of the FAISS store across writes, compactions and restarts,
in-process (the real WAL, artifacts, snapshots, writer and compactor; a fake embedder).

A token names the build it was issued against and a row of it; compaction renumbers rows and
records how the old build's rows map to the new one's, so a listing continues where it left off:
every product live for the whole listing is listed exactly once, whatever was deleted, appended
or compacted in between. A token the server can no longer map is FAILED_PRECONDITION, a token
past the end is an empty last page - never INTERNAL, never a silent skip."""
from __future__ import annotations

import base64
import random

import pytest

from index_service import artifacts
from index_service.row_maps import MAX_ROW_MAPS
from index_service.snapshot import Snapshot
from index_service.store import encode_page_token
from servekit.errors import FailedPrecondition, InvalidArgument
from tests.test_compaction import product, serving
from tests.test_index_support import TINY_HEADER

pytestmark = pytest.mark.timeout(120)
N = 30
IDS = [f"p{i:02d}" for i in range(N)]
ROWS = [[pid, f"Catalog item number {i}", "Brandy", f"Description of item {i}", "$10.00",
         "Home|Things", "Red"] for i, pid in enumerate(IDS)]
assert len(TINY_HEADER) == len(ROWS[0])


@pytest.fixture
def svc(tmp_path):
    for service in serving(tmp_path, ROWS):
        service.list = lambda size, token="": service.core(max_k=100).list(size, token)
        yield service


def ids(page) -> list[str]:
    return [p["id"] for p in page.products]


def rest(svc, token: str) -> list[str]:
    """Every product from `token` to the end of the listing."""
    listed = []
    while token:
        page = svc.list(7, token)
        listed += ids(page)
        token = page.next_page_token
    return listed


def raw_token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_deletes_before_the_tokens_row_do_not_skip_products(svc):
    first = svc.list(10)
    assert ids(first) == IDS[:10]
    svc.writer.delete(IDS[:5])
    svc.compactor.compact()
    assert rest(svc, first.next_page_token) == IDS[10:]


def test_deletes_after_the_tokens_row_are_not_listed(svc):
    first = svc.list(10)
    svc.writer.delete(["p12", "p20"])
    svc.compactor.compact()
    assert rest(svc, first.next_page_token) == [p for p in IDS[10:] if p not in ("p12", "p20")]


def test_the_tokens_own_row_deleted_continues_with_the_next_product(svc):
    first = svc.list(10)
    svc.writer.delete(["p10", "p11", "p03"])
    svc.compactor.compact()
    assert rest(svc, first.next_page_token) == IDS[12:]


def test_products_appended_while_the_build_is_written_keep_their_place(svc, monkeypatch):
    import index_service.compaction as compaction
    real, tokens = compaction.write_compacted, []

    def write_while_writes_land(data_dir, snap):
        result = real(data_dir, snap)
        svc.upsert(product("n2", "Second new thing"), product("n3", "Third new thing"))
        svc.writer.delete(["p29"])
        page = svc.list(N - 5 + 1)                      # p05..p28, n1, n2: the token names n3's row
        assert ids(page)[-2:] == ["n1", "n2"]
        tokens.append(page.next_page_token)
        return result

    svc.writer.delete(IDS[:5])
    svc.upsert(product("n1", "First new thing"))
    monkeypatch.setattr(compaction, "write_compacted", write_while_writes_land)
    svc.compactor.compact()
    assert svc.state.snapshot.manifest["product_count"] == N - 5 + 1  # p05..p29 and n1
    assert rest(svc, tokens[0]) == ["n3"]


def test_two_compactions_in_a_row_and_writes_between_the_pages(svc):
    first = svc.list(8)
    svc.writer.delete(["p02", "p09", "p15"])
    svc.compactor.compact()
    second = svc.list(4, first.next_page_token)
    assert ids(second) == ["p08", "p10", "p11", "p12"]
    svc.writer.delete(["p00", "p13", "p14", "p16", "p20"])
    svc.upsert(product("p25", "Item 25 replaced"), product("n1", "A new one"))
    svc.compactor.compact()
    svc.writer.delete(["p01"])
    svc.compactor.compact()
    listed = rest(svc, first.next_page_token)   # the first token still maps, through 3 builds
    assert listed == ["p08", "p10", "p11", "p12", "p17", "p18", "p19", "p21", "p22", "p23",
                      "p24", "p26", "p27", "p28", "p29", "p25", "n1"]
    assert rest(svc, second.next_page_token) == listed[4:]


def test_a_token_issued_before_compactions_and_a_clean_shutdown_works_after_the_restart(svc):
    first = svc.list(10)
    svc.writer.delete(["p01"])
    svc.compactor.compact()
    svc.writer.delete(["p10"])
    svc.compactor.compact()
    svc.writer.delete(["p20"])
    svc.compactor.stop(final=True)      # a clean shutdown compacts (a third build)...
    svc.wal.close()
    svc.open()                          # ...and the next start loads it, with the maps saved
    assert svc.replayed == 0 and svc.state.snapshot.live is None
    assert rest(svc, first.next_page_token) == [p for p in IDS[11:] if p != "p20"]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_an_unreadable_row_map_file_refuses_old_tokens_and_serves_the_rest(svc, damage):
    token = svc.list(10).next_page_token
    svc.writer.delete(["p01"])
    svc.compactor.stop(final=True)
    svc.wal.close()
    build_dir, _ = artifacts.current_build(svc.data_dir)
    path = build_dir / artifacts.ROW_MAP_FILE
    data = path.read_bytes()
    path.write_bytes(b"not a row map" if damage == "garbage" else data[:len(data) // 2])
    svc.open()                          # starts, and serves everything else
    with pytest.raises(FailedPrecondition, match="empty page_token"):
        svc.list(5, token)
    assert rest(svc, svc.list(5).next_page_token) == [p for p in IDS[6:]]


def test_a_token_of_a_build_the_server_cannot_map_is_failed_precondition(svc):
    first = svc.list(5)
    for i in range(MAX_ROW_MAPS + 1):   # more compactions than the server remembers
        svc.writer.delete([IDS[-1 - i]])
        svc.compactor.compact()
    for token in (first.next_page_token, raw_token("p2:20200101T000000-deadbeef:5")):
        with pytest.raises(FailedPrecondition, match="empty page_token"):
            svc.list(5, token)
    # one compaction fewer is still mapped
    second = svc.list(5)
    for i in range(MAX_ROW_MAPS):
        svc.writer.delete([f"p{10 + i:02d}"])
        svc.compactor.compact()
    assert rest(svc, second.next_page_token) == ["p05", "p06", "p07", "p08", "p09"]


def test_a_build_rebuilt_without_a_map_refuses_the_old_builds_tokens(svc):
    token = svc.list(5).next_page_token
    snap = svc.state.snapshot
    rebuilt = Snapshot(catalog=snap.catalog, vectors=snap.vectors, lexical=snap.lexical,
                       manifest={**snap.manifest, "build_id": "20300101T000000-0123abcd"})
    svc.state.swap(rebuilt)             # as a start-up rebuild from a changed catalog would
    with pytest.raises(FailedPrecondition, match="start the listing again"):
        svc.list(5, token)


@pytest.mark.parametrize("row", ["99999999999999999999", str(2**63), str(10**39)])
def test_a_row_past_the_catalog_is_an_empty_last_page_after_writes(svc, row):
    svc.writer.delete(["x"])            # a no-op write: the snapshot has a live mask now
    build = svc.state.snapshot.build_id
    for text in (f"p1:{row}", f"p2:{build}:{row}"):
        page = svc.list(2, raw_token(text))
        assert (ids(page), page.next_page_token, page.total_count) == ([], "", N)
    token = svc.list(2).next_page_token
    svc.compactor.compact()             # and through a row map
    page = svc.list(2, raw_token(f"p2:{build}:{row}"))
    assert (ids(page), page.next_page_token) == ([], "")
    assert ids(svc.list(2, token)) == IDS[2:4]


def test_edited_tokens_are_invalid_argument(svc):
    build = svc.state.snapshot.build_id
    for text in ("p2:1", f"p2:{build}:", f"p2:{build}:-1", f"p2:{build}:\u00b2", f"p2:{build}:3x",
                 f"p2:{build}: 3", f"p2:{build}:{'9' * 5000}", "p2:bad/id:3", "p3:1", "p1:"):
        with pytest.raises(InvalidArgument, match="page_token"):
            svc.list(3, raw_token(text))


def test_old_p1_tokens_are_rows_of_the_current_build(svc):
    svc.writer.delete(["p03"])
    assert ids(svc.list(3, encode_page_token("p1:", "4"))) == ["p04", "p05", "p06"]
    svc.compactor.compact()             # as before: a row of the build being served now
    assert ids(svc.list(3, encode_page_token("p1:", "4"))) == ["p05", "p06", "p07"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_writes_and_compactions_never_skip_or_repeat_a_product(svc, seed):
    rng = random.Random(seed)
    live, ever_deleted, listed, token, fresh = set(IDS), set(), [], "", 0
    while True:
        page = svc.list(rng.randint(1, 3), token)
        listed += ids(page)
        token = page.next_page_token
        if not token:
            break
        doomed = rng.sample(sorted(live), min(len(live), rng.choice([1, 1, 2, 3])))
        svc.writer.delete(doomed)
        live -= set(doomed)
        ever_deleted |= set(doomed)
        if rng.random() < 0.3:
            fresh += 1
            svc.upsert(product(f"n{fresh}", f"Fresh product {fresh}"))
        if rng.random() < 0.5:
            svc.compactor.compact()
    throughout = [p for p in IDS if p not in ever_deleted]
    assert [p for p in listed if p in throughout] == throughout   # in order, each once
    assert len(listed) == len(set(listed)) and len(ever_deleted) >= 5
    assert svc.compactor.compactions >= 3
