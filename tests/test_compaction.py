"""Compaction and the lexical model between compactions, in-process (a fake embedder, the real
WAL, artifacts, snapshot and writer): restarts replay only what the artifacts lack, a crash between
the artifacts and the checkpoint applies nothing twice, writes racing a compaction are kept, and a
search sees a batch entirely or not at all."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from client.generated.recsys.v1 import index_pb2 as pb
from index_service import artifacts, vectors
from index_service.catalog_reader import read_catalog
from index_service.compaction import Compactor, write_compacted
from index_service.filters import FilterSpec
from index_service.lexical import LexicalIndex
from index_service.faiss_store import FaissStore
from index_service.product_writes import clean_products, product_texts
from index_service.search import SearchCore
from index_service.snapshot import ServedState, Snapshot
from index_service.startup import with_log_replayed
from index_service.store import StoreHolder
from index_service.wal import WriteAheadLog
from index_service.writes import CatalogWriter
from tests.test_index_support import TINY_ROWS, write_tiny_csv

pytestmark = pytest.mark.timeout(120)
DIM = 16
N = len(TINY_ROWS)


class FakeEmbedder:
    """Deterministic vectors from the text (the embedder is not under test here)."""

    def embed(self, texts, *, timeout=None, what="texts", callers=False):
        rows = [np.random.default_rng(abs(hash(t)) % 2**32).normal(size=DIM) for t in texts]
        return vectors.normalize(np.array(rows, dtype=np.float32))


class Service:
    """The index service's write path over one data directory; `restart()` reopens it as a new
    process would (startup.open_store without the embedder: the artifacts in CURRENT, then the
    log replayed)."""

    def __init__(self, data_dir, every_writes=0):
        self.data_dir, self.every_writes = data_dir, every_writes
        self.open()

    def open(self):
        self.wal = WriteAheadLog(self.data_dir / "catalog.wal")
        self.state = ServedState()
        self.writer = CatalogWriter(self.state, FakeEmbedder(), self.wal,
                                    on_write=lambda: self.compactor.notify())
        build_dir, manifest = artifacts.current_build(self.data_dir)
        self.replayed = sum(1 for _ in self.wal.replay(after_seq=manifest.get("wal_sequence", 0)))
        self.state.swap(with_log_replayed(Snapshot.load(build_dir, manifest, {}), self.wal,
                                          self.writer))
        self.compactor = Compactor(self.state, self.wal, self.data_dir, replay=self.writer.replay,
                                   search_params={}, every_writes=self.every_writes, every_bytes=0)

    def restart(self):
        self.compactor.stop(final=False)
        self.wal.close()  # what SIGKILL leaves on disk: the log and CURRENT, nothing else
        self.open()

    def upsert(self, *products):
        vectors = FakeEmbedder().embed(product_texts(products))
        return self.writer.upsert(clean_products(products), vectors)

    def core(self, max_k):
        store = FaissStore(self.state, self.writer, self.wal, self.compactor)
        return SearchCore(StoreHolder(store), embedder=None, max_k=max_k, max_batch_products=100)

    def ids(self):
        snap = self.state.snapshot
        return sorted(snap.catalog.ids[int(r)] for r in snap.live_rows())

    def title(self, product_id):
        snap = self.state.snapshot
        row = snap.row_of(product_id)
        return None if row is None else snap.catalog.product(row)["title"]


def serving(tmp_path, rows=TINY_ROWS):
    """A Service on a first build of `rows` (tiny-CSV rows) in tmp_path/data; stopped after."""
    catalog, _ = read_catalog(write_tiny_csv(tmp_path / "tiny.csv", rows))
    vecs = FakeEmbedder().embed(catalog.search_texts())
    first = Snapshot(catalog=catalog, vectors=vectors.create("flat", DIM).build(vecs),
                     lexical=LexicalIndex().fit(catalog.search_texts()),
                     manifest={"model_name": "fake", "dimension": DIM, "index_type": "flat",
                               "index_params": {}, "catalog_sha256": "x", "built_at": "t",
                               "format_version": artifacts.FORMAT_VERSION})
    write_compacted(tmp_path / "data", first)
    svc = Service(tmp_path / "data")
    yield svc
    svc.compactor.stop(final=False)
    svc.wal.close()


@pytest.fixture
def service(tmp_path):
    yield from serving(tmp_path)


def product(pid, title):
    return pb.Product(id=pid, title=title, brand="Testy", price=10.0, categories=["Home", "Test"])


def test_after_compaction_a_restart_replays_only_newer_writes(service):
    service.upsert(product("n1", "Teak garden bench"))
    service.upsert(product("n2", "Jute doormat"), product("t01", "Oak desk v2"))
    service.writer.delete(["t02"])
    assert service.compactor.compact() == 3
    manifest = artifacts.current_build(service.data_dir)[1]
    assert manifest["wal_sequence"] == 3 and manifest["product_count"] == N + 1
    assert service.wal.base_sequence == 3 and service.wal.pending_records == 0
    assert service.state.snapshot.live is None  # served from the compacted build, no masked rows
    service.upsert(product("n3", "Wicker basket"))
    before = service.ids()
    service.restart()
    assert service.replayed == 1 and service.state.snapshot.sequence == 4
    assert service.ids() == before and "t02" not in before
    assert service.title("t01") == "Oak desk v2"


def test_crash_between_artifacts_and_checkpoint_applies_nothing_twice(service):
    service.upsert(product("n1", "Teak garden bench"))
    service.writer.delete(["n1"])           # replaying seq 1 again would bring n1 back
    service.upsert(product("t01", "Oak desk v2"))
    write_compacted(service.data_dir, service.state.snapshot)  # ... and SIGKILL: no checkpoint
    service.upsert(product("t01", "Oak desk v3"))
    before = service.ids()
    service.restart()
    assert service.wal.base_sequence == 0   # the log still holds seq 1..4
    assert service.replayed == 1            # but the artifacts hold 1..3: only 4 is applied
    assert service.ids() == before and "n1" not in before
    assert service.title("t01") == "Oak desk v3"
    assert service.compactor.compact() == 4  # and the store compacts cleanly from there
    service.restart()
    assert service.replayed == 0 and service.ids() == before


def test_a_checkpoint_missed_by_a_crash_is_made_up_without_a_new_build(service):
    service.upsert(product("n1", "Teak garden bench"))
    build_dir, _ = write_compacted(service.data_dir, service.state.snapshot)  # ... and SIGKILL
    service.restart()
    assert service.replayed == 0 and service.wal.base_sequence == 0
    assert service.compactor.compact() is None           # nothing new to build ...
    assert service.wal.base_sequence == 1                # ... but the log is checkpointed
    assert artifacts.current_build(service.data_dir)[0] == build_dir


def test_writes_during_a_compaction_are_kept(service, monkeypatch):
    import index_service.compaction as compaction
    real = compaction.write_compacted

    def write_while_a_write_lands(data_dir, snap):
        result = real(data_dir, snap)
        service.writer.delete(["t03"])      # acknowledged while the build is being written
        return result

    monkeypatch.setattr(compaction, "write_compacted", write_while_a_write_lands)
    service.upsert(product("n1", "Teak garden bench"))
    assert service.compactor.compact() == 1
    snap = service.state.snapshot
    assert snap.sequence == 2 and snap.row_of("t03") is None and snap.row_of("n1") is not None
    service.restart()
    assert "t03" not in service.ids() and "n1" in service.ids()


def test_background_compaction_every_n_writes_and_at_shutdown(tmp_path, service):
    service.compactor.stop(final=False)
    service.wal.close()
    svc = Service(service.data_dir, every_writes=3)
    svc.compactor.start()
    for i in range(3):
        svc.upsert(product(f"n{i}", f"Thing number {i}"))
    assert svc.compactor.compacted.wait(30)
    assert artifacts.current_build(svc.data_dir)[1]["wal_sequence"] == 3
    svc.writer.delete(["n0"])
    svc.compactor.stop(final=True)         # clean shutdown: the log is folded in
    assert svc.wal.base_sequence == 4 and svc.wal.pending_records == 0
    svc.wal.close()
    svc.open()
    assert svc.replayed == 0 and "n0" not in svc.ids() and "n2" in svc.ids()
    svc.wal.close()


def test_new_rows_use_the_fixed_vocabulary_until_compaction_refits(service):
    core = service.core(max_k=100)

    def lexical_ids(query):
        ranking = core.search(query=query, vector=None, k=3, spec=FilterSpec(), mode=2,
                              min_score=0.01, offset=0, hybrid=None, timeout=None)
        return [p["id"] for p in ranking.products]

    old_scores = service.state.snapshot.lexical.scores("oak desk")
    service.upsert(product("n1", "Oak desk with a zyzzyva inlay"), product("n2", "Zyzzyva mug"))
    lex = service.state.snapshot.lexical
    assert lex.rows_since_fit == 2 and len(lex) == N + 2
    np.testing.assert_allclose(lex.scores("oak desk")[:N], old_scores)  # old rows unchanged
    assert "n1" in lexical_ids("oak desk")           # known terms: found at once
    assert lexical_ids("zyzzyva") == []              # a new term: not in the vocabulary yet
    service.compactor.compact()
    assert service.state.snapshot.lexical.rows_since_fit == 0
    assert set(lexical_ids("zyzzyva")) == {"n1", "n2"}  # refitted: the term is known now


def test_a_search_sees_a_batch_entirely_or_not_at_all(service):
    core = service.core(max_k=1000)
    query = FakeEmbedder().embed(["anything"])[0].tolist()
    seen, errors, done = [], [], threading.Event()

    def search_loop():
        while not done.is_set():
            try:
                r = core.search(query="", vector=query, k=1000, spec=FilterSpec(), mode=1,
                                min_score=None, offset=0, hybrid=None, timeout=None)
                titles = [p["title"] for p in r.products]
                seen.append([sum(f"batch{b} " in t for t in titles) for b in range(12)])
            except Exception as exc:  # noqa: BLE001 - any error fails the test below
                errors.append(exc)

    threads = [threading.Thread(target=search_loop) for _ in range(3)]
    for t in threads:
        t.start()
    for b in range(12):
        service.upsert(*[product(f"b{b}-{i}", f"batch{b} item {i}") for i in range(5)])
        if b % 4 == 3:
            service.compactor.compact()
        if b % 3 == 2:
            service.writer.delete([f"b{b - 1}-{i}" for i in range(5)])
    done.set()
    for t in threads:
        t.join()
    assert not errors and len(seen) > 10
    assert all(count in (0, 5) for counts in seen for count in counts)


def test_a_deleted_log_beside_compacted_artifacts_numbers_new_writes_after_them(service):
    service.upsert(product("n1", "Teak garden bench"))
    service.upsert(product("n2", "Jute doormat"))
    service.compactor.compact()
    service.wal.close()
    (service.data_dir / "catalog.wal").unlink()           # removed by hand
    service.open()
    assert service.ids().count("n1") == 1 and service.wal.base_sequence == 2
    assert service.upsert(product("n3", "Wicker basket"))[2] == 3
    service.restart()
    assert service.replayed == 1 and "n3" in service.ids()


def test_a_log_with_records_behind_the_artifacts_is_refused(service):
    from index_service.startup import StartupError
    for pid in ("n1", "n2"):
        service.upsert(product(pid, f"Rug {pid}"))
    service.compactor.compact()
    service.wal.close()
    (service.data_dir / "catalog.wal").unlink()
    with WriteAheadLog(service.data_dir / "catalog.wal") as other:  # another store's log
        other.append("delete", b"DEL1\x00\x00\x00\x00")
    with pytest.raises(StartupError, match="belongs to other artifacts"):
        service.open()
    service.wal.close()
