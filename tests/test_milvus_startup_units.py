"""What a Milvus replica does at start for each build record it finds (no Milvus needed: the
decisions and their one-line refusals). The same paths run against a real Milvus 2.3.5 in
tests/test_milvus_startup.py."""
from __future__ import annotations

import pytest

from index_service.config import IndexConfig
from index_service.milvus import startup
from index_service.milvus.startup import FILL, SERVE, WAIT, Target, next_step, served_index
from index_service.startup_plan import StartupError

CONFIG = IndexConfig(catalog="data/a.csv", store="milvus", milvus_collection="shop",
                     milvus_uri="http://milvus:19530")
MINE = Target("a" * 64, {"title": "title"}, "model-x", 384, "host-a:10")
NOW = 1_000_000.0


def built(status: str, owner: str = "host-b:20", heartbeat: float = NOW, **changes) -> dict:
    return {"status": status, "owner": owner, "heartbeat": heartbeat,
            "catalog_sha256": MINE.catalog_sha256, "columns": MINE.columns,
            "model_name": MINE.model_name, "dimension": MINE.dimension, **changes}


def one_line(message: str) -> str:
    assert "\n" not in message and message.startswith("refusing to serve: ")
    return message


@pytest.mark.parametrize("info, exists, step", [
    (None, False, FILL),                                        # the very first start
    (None, True, FILL),                                         # empty: checked before filling
    (built("ready"), True, SERVE),
    (built("ready"), False, FILL),                              # dropped by hand: record stale
    (built("filling"), True, WAIT),                             # a live filler
    (built("filling", heartbeat=NOW - startup.STALE_S + 1), True, WAIT),
    (built("filling", heartbeat=NOW - startup.STALE_S - 1), True, FILL),   # silent: take over
    (built("filling", owner=MINE.owner), True, FILL),            # this replica, after a retry
    (built("filling", catalog_sha256="b" * 64, heartbeat=0.0), True, FILL),
])
def test_the_step_for_each_record(info, exists, step):
    assert next_step(info, MINE, CONFIG, exists=exists, now=NOW) == step


@pytest.mark.parametrize("exists", [True, False])
def test_a_ready_build_of_another_catalog_is_refused_even_when_its_collection_is_gone(exists):
    with pytest.raises(StartupError) as refused:
        next_step(built("ready", catalog_sha256="b" * 64), MINE, CONFIG, exists=exists, now=NOW)
    line = one_line(str(refused.value))
    assert "shop" in line and "bbbbbbbbbbbb" in line and "data/a.csv" in line
    assert ("the collection is gone" in line) is not exists


def test_the_served_index_is_the_collections_and_must_be_the_flags():
    assert served_index(CONFIG, "HNSW") == "hnsw"
    assert served_index(IndexConfig(catalog="c", milvus_index_type="flat"), "FLAT") == "flat"
    with pytest.raises(StartupError) as refused:
        served_index(IndexConfig(catalog="c", milvus_collection="shop",
                                 milvus_index_type="flat"), "HNSW")
    line = one_line(str(refused.value))
    assert "HNSW vector index" in line and "--milvus-index-type flat" in line
    assert "start it with --milvus-index-type hnsw" in line


def test_an_index_we_never_build_gets_no_flag_advice():
    with pytest.raises(StartupError) as refused:
        served_index(CONFIG, "IVF_FLAT")
    line = one_line(str(refused.value))
    assert "IVF_FLAT" in line and "start it with" not in line


def test_a_collection_without_a_record_is_refused_saying_what_to_do():
    line = one_line(startup.unrecorded_refusal(CONFIG, 314))
    assert "314 products" in line and "shop_build" in line
    assert "drop the collection" in line and "--milvus-collection" in line
