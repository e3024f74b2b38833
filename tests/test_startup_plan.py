"""startup_plan.plan: what start-up does with the data directory, decided without services."""
from __future__ import annotations

from dataclasses import replace

import pytest

from index_service.startup_plan import (BUILD, LOAD, REEMBED, REINDEX, Facts, StartupError,
                                        plan)

MODEL = ("sentence-transformers/all-MiniLM-L6-v2", 384)
COLUMNS = {"id": "uniq_id", "title": "title"}
BUILT = {"model_name": MODEL[0], "dimension": MODEL[1], "catalog_sha256": "aaa",
         "columns": COLUMNS, "embeddings_sha256": None, "index_type": "hnsw",
         "index_params": {"m": 16, "ef_construction": 64, "ef_search": 256}, "wal_sequence": 7,
         "catalog_wal_sequence": 7, "catalog_path": "/data/old.csv"}
FRESH = Facts(catalog_sha256="aaa", columns=COLUMNS, model=MODEL, index_type="hnsw",
              index_params={"m": 16, "ef_construction": 64, "ef_search": 256},
              build_param_names=("m", "ef_construction"), data_dir="/data", embedder="e:1")
SERVED = replace(FRESH, manifest=BUILT, wal_base_seq=7, wal_last_seq=9)


def test_no_build_yet_builds_from_the_file():
    p = plan(FRESH)
    assert (p.action, p.wal_sequence, p.reembed_logged_upserts, p.import_embeddings) == (
        BUILD, 0, False, False)
    assert p.notes == ()


def test_no_build_but_logged_writes_builds_and_says_they_are_reapplied():
    p = plan(replace(FRESH, wal_base_seq=3, wal_last_seq=5))
    assert (p.action, p.wal_sequence) == (BUILD, 3)
    assert "2 writes logged after seq 3 are re-applied" in p.notes[0]


def test_nothing_changed_loads():
    p = plan(SERVED)
    assert (p.action, p.wal_sequence, p.reembed_logged_upserts) == (LOAD, 7, False)


def test_a_search_time_parameter_is_no_reason_to_rebuild():
    assert plan(replace(SERVED, index_params={**SERVED.index_params, "ef_search": 1024})).action == LOAD


@pytest.mark.parametrize("change", [
    {"index_type": "flat", "index_params": {}, "build_param_names": ()},
    {"index_params": {**FRESH.index_params, "m": 32}},
])
def test_another_index_reindexes_the_stored_embeddings(change):
    p = plan(replace(SERVED, **change))
    assert (p.action, p.wal_sequence) == (REINDEX, 7)


@pytest.mark.parametrize("change", [{"catalog_sha256": "bbb"},
                                    {"columns": {**COLUMNS, "title": "name"}}])
def test_a_changed_file_or_mapping_rebuilds_from_the_file(change):
    p = plan(replace(SERVED, **change))
    assert (p.action, p.wal_sequence) == (BUILD, 7)
    assert "2 writes logged after seq 7 are re-applied" in p.notes[0]


@pytest.mark.parametrize("change", [{"csv_delimiter": ";"}, {"catalog_format": "jsonl",
                                                             "csv_delimiter": ""}])
def test_the_same_bytes_read_another_way_rebuild(change):
    """A forced --csv-delimiter (or a format) other than the build's: the same file is other
    products, so the build is not served."""
    built = {**BUILT, "catalog_format": "csv", "csv_delimiter": ","}
    assert plan(replace(SERVED, manifest=built)).action == LOAD
    p = plan(replace(SERVED, manifest=built, **change))
    assert (p.action, p.wal_sequence) == (BUILD, 7)


def test_a_build_from_before_formats_is_a_comma_csv_build():
    assert plan(SERVED).action == LOAD  # BUILT has neither catalog_format nor csv_delimiter
    assert plan(replace(SERVED, csv_delimiter=";")).action == BUILD


def test_the_checkpoint_counts_when_it_is_past_the_build():
    assert plan(replace(SERVED, catalog_sha256="bbb", wal_base_seq=8)).wal_sequence == 8


def test_imported_embeddings_are_imported_and_their_change_rebuilds():
    built = {**BUILT, "embeddings_sha256": "e1"}
    assert plan(replace(SERVED, manifest=built, embeddings_sha256="e1")).action == LOAD
    p = plan(replace(SERVED, manifest=built, embeddings_sha256="e2"))
    assert (p.action, p.import_embeddings) == (BUILD, True)


def test_another_model_is_refused_by_default_naming_both():
    with pytest.raises(StartupError, match=r"built with model 'old-model' \(dimension 384\).*"
                                           r"embedder at e:1 serves 'sentence-transformers"):
        plan(replace(SERVED, manifest={**BUILT, "model_name": "old-model"}))


def test_another_model_with_rebuild_reembeds_the_stored_catalog_and_the_log():
    p = plan(replace(SERVED, manifest={**BUILT, "dimension": 768}, on_model_change="rebuild"))
    assert (p.action, p.wal_sequence, p.reembed_logged_upserts) == (REEMBED, 7, True)
    assert "rebuilding (--on-model-change rebuild)" in p.notes[0]


def test_another_model_and_another_file_rebuild_from_the_file_and_reembed_the_log():
    p = plan(replace(SERVED, manifest={**BUILT, "model_name": "old"}, catalog_sha256="bbb",
                     on_model_change="rebuild"))
    assert (p.action, p.reembed_logged_upserts) == (BUILD, True)
    assert len(p.notes) == 2


@pytest.mark.parametrize("runtime", [("openvino", "bf16"), ("torch", "bf16"), ("openvino", "fp32")])
def test_another_embedder_backend_or_precision_is_a_note_not_a_rebuild(runtime):
    built = {**BUILT, "embedder_backend": "torch", "embedder_precision": "fp32"}
    served = replace(SERVED, manifest=built)
    assert plan(replace(served, embedder_runtime=("torch", "fp32"))) == plan(served)
    p = plan(replace(served, embedder_runtime=runtime))
    assert (p.action, p.wal_sequence, p.reembed_logged_upserts) == (LOAD, 7, False)
    assert p.notes == (f"the artifacts in /data were embedded with backend torch fp32, the embedder "
                       f"at e:1 runs {runtime[0]} {runtime[1]}: vectors stay compatible; no rebuild",)
    for change in ({"index_type": "flat", "index_params": {}, "build_param_names": ()},
                   {"catalog_sha256": "bbb"}):  # the action stays what the other facts decide
        assert plan(replace(served, embedder_runtime=runtime, **change)).action == \
            plan(replace(served, **change)).action


def test_a_build_or_embedder_that_records_no_backend_gives_no_note():
    assert plan(replace(SERVED, embedder_runtime=("openvino", "bf16"))).notes == ()
    built = {**BUILT, "embedder_backend": "torch", "embedder_precision": "fp32"}
    assert plan(replace(SERVED, manifest=built)).notes == ()


# A build that holds live writes: its catalog file was read at seq 4, writes 5 to 7 compacted in.
COMPACTED = {**BUILT, "catalog_wal_sequence": 4}


@pytest.mark.parametrize("change", [{"catalog_sha256": "bbb"},
                                    {"columns": {**COLUMNS, "title": "name"}}])
def test_a_changed_file_is_refused_where_the_rebuild_would_drop_compacted_writes(change):
    with pytest.raises(StartupError) as refused:
        plan(replace(SERVED, manifest=COMPACTED, **change))
    message = str(refused.value)
    assert "live writes (log seq 5 to 7)" in message and "/data/old.csv" in message
    assert "--on-catalog-change rebuild" in message and "\n" not in message


def test_on_catalog_change_rebuild_drops_them_and_says_so():
    p = plan(replace(SERVED, manifest=COMPACTED, catalog_sha256="bbb", on_catalog_change="rebuild"))
    assert (p.action, p.wal_sequence) == (BUILD, 7)
    assert "log seq 5 to 7" in p.notes[0] and "dropping them" in p.notes[0]
    assert "2 writes logged after seq 7 are re-applied" in p.notes[1]


def test_what_a_rebuild_keeps_is_no_reason_to_refuse():
    """Nothing compacted: the logged writes are re-applied; a reindex or a load drops nothing."""
    assert plan(replace(SERVED, catalog_sha256="bbb")).action == BUILD
    assert plan(replace(SERVED, manifest=COMPACTED)).action == LOAD
    assert plan(replace(SERVED, manifest=COMPACTED, index_type="flat", index_params={},
                        build_param_names=())).action == REINDEX


def test_a_build_from_before_the_field_counts_its_logged_writes_as_live():
    before = {k: v for k, v in BUILT.items() if k != "catalog_wal_sequence"}
    with pytest.raises(StartupError, match="log seq 1 to 7"):
        plan(replace(SERVED, manifest=before, catalog_sha256="bbb"))
    never_written = {**before, "wal_sequence": 0}
    assert plan(replace(SERVED, manifest=never_written, wal_base_seq=0, wal_last_seq=0,
                        catalog_sha256="bbb")).action == BUILD
