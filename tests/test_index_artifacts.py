"""Artifacts are written atomically; config parsing; the query cache."""
from __future__ import annotations

import numpy as np
import pytest

from index_service import artifacts
from index_service.config import IndexConfig, embedder_target
from index_service.embedder_client import QueryCache


def _writer(content: str):
    def write(tmp):
        (tmp / "faiss.index").write_text(content)
    return write


def test_build_becomes_current_and_replaces_the_old(tmp_path):
    first = artifacts.write_build(tmp_path, {"format_version": 1, "n": 1}, _writer("one"))
    build, manifest = artifacts.current_build(tmp_path)
    assert build == first and manifest["n"] == 1 and manifest["build_id"]
    second = artifacts.write_build(tmp_path, {"format_version": 1, "n": 2}, _writer("two"))
    build, manifest = artifacts.current_build(tmp_path)
    assert build == second and manifest["n"] == 2 and (build / "faiss.index").read_text() == "two"
    assert not first.exists()


def test_crash_mid_build_keeps_the_previous_build(tmp_path):
    artifacts.write_build(tmp_path, {"format_version": 1, "n": 1}, _writer("one"))

    def crash(tmp):
        (tmp / "faiss.index").write_text("half")
        raise KeyboardInterrupt("killed while writing")

    with pytest.raises(KeyboardInterrupt):
        artifacts.write_build(tmp_path, {"format_version": 1, "n": 2}, crash)
    build, manifest = artifacts.current_build(tmp_path)
    assert manifest["n"] == 1 and (build / "faiss.index").read_text() == "one"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_no_or_broken_artifacts_mean_rebuild(tmp_path):
    assert artifacts.current_build(tmp_path) is None
    (tmp_path / "CURRENT").write_text("build-missing\n")
    assert artifacts.current_build(tmp_path) is None
    build = artifacts.write_build(tmp_path, {"format_version": 1}, _writer("x"))
    (build / "manifest.json").write_text("{not json")
    assert artifacts.current_build(tmp_path) is None
    artifacts.write_build(tmp_path, {"format_version": 999}, _writer("x"))
    assert artifacts.current_build(tmp_path) is None


def test_config_flags_env_and_errors(capsys):
    env = {"INDEX_PORT": "6000", "INDEX_MAX_K": "50", "INDEX_TYPE": "hnsw"}
    config = IndexConfig.from_args(["--catalog", "c.csv", "--data-dir", "d", "--max-k", "70"], env)
    assert (config.port, config.max_k, config.index_type) == (6000, 70, "hnsw")
    assert config.index_params == {"m": 16, "ef_construction": 64, "ef_search": 256}
    for argv, message in [([], "--catalog"), (["--catalog", "c"], "--data-dir"),
                          (["--catalog", "c", "--data-dir", "d", "--index-type", "annoy"], "index-type"),
                          (["--catalog", "c", "--data-dir", "d", "--max-k", "0"], "--max-k")]:
        with pytest.raises(SystemExit):
            IndexConfig.from_args(argv, {})
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        IndexConfig.from_args(["--catalog", "c", "--data-dir", "d"], {"INDEX_MAX_K": "many"})
    assert "INDEX_MAX_K" in capsys.readouterr().err


def test_the_milvus_store_gets_every_general_check_too(capsys):
    milvus = ["--catalog", "c", "--store", "milvus"]
    assert IndexConfig.from_args(milvus, {}).store == "milvus"  # no --data-dir needed
    assert IndexConfig.from_args(milvus + ["--max-k", "6384"], {}).max_k == 6384
    assert IndexConfig.from_args(["--catalog", "c", "--data-dir", "d", "--max-k", "10000"],
                                 {}).max_k == 10000  # FAISS: no such cap
    for argv, message in [(milvus + ["--max-k", "0"], "--max-k"),
                          (milvus + ["--grace-s", "-1"], "--grace-s"),
                          (milvus + ["--port", "70000"], "ports"),
                          (milvus + ["--milvus-consistency", "Eventually"], "--milvus-consistency"),
                          (milvus + ["--milvus-index-type", "ivf"], "--milvus-index-type"),
                          (milvus + ["--milvus-collection", "9bad-name"], "--milvus-collection"),
                          (milvus + ["--milvus-token", "t", "--milvus-token-file", "f"], "not both"),
                          # offset + k past Milvus's 16,384 hits per search: pages cut short
                          (milvus + ["--max-k", "6385"], "use --max-k 6384 or less")]:
        with pytest.raises(SystemExit):
            IndexConfig.from_args(argv, {})
        assert message in capsys.readouterr().err, argv


def test_hybrid_flags_env_and_errors(capsys):
    base = ["--catalog", "c", "--data-dir", "d"]
    config = IndexConfig.from_args(base, {})
    assert (config.hybrid.fusion, config.hybrid.alpha, config.hybrid.candidates) == ("rrf", 0.5, 0)
    env = {"INDEX_HYBRID_FUSION": "weighted", "INDEX_HYBRID_ALPHA": "0.3"}
    config = IndexConfig.from_args(base + ["--hybrid-candidates", "200"], env)
    assert (config.hybrid.fusion, config.hybrid.alpha, config.hybrid.candidates) == ("weighted", 0.3, 200)
    assert IndexConfig.from_args(base + ["--hybrid-alpha", "1"], env).hybrid.alpha == 1.0
    milvus = ["--catalog", "c", "--store", "milvus"]
    for argv, message in [(base + ["--hybrid-fusion", "linear"], "--hybrid-fusion"),
                          (base + ["--hybrid-alpha", "1.5"], "--hybrid-alpha"),
                          (base + ["--hybrid-alpha", "-0.1"], "--hybrid-alpha"),
                          (base + ["--hybrid-alpha", "nan"], "--hybrid-alpha"),
                          (base + ["--hybrid-candidates", "-1"], "--hybrid-candidates"),
                          (milvus + ["--hybrid-alpha", "2"], "--hybrid-alpha")]:
        with pytest.raises(SystemExit):
            IndexConfig.from_args(argv, {})
        assert message in capsys.readouterr().err, argv


def test_embedder_targets():
    assert embedder_target("localhost:50051") == "localhost:50051"
    assert embedder_target("dns:///embedder:50051") == "dns:///embedder:50051"
    assert embedder_target("127.0.0.1:1, 127.0.0.1:2") == "ipv4:127.0.0.1:1,127.0.0.1:2"
    with pytest.raises(ValueError, match="HOST:PORT"):
        embedder_target("127.0.0.1:1,nonsense")


def test_query_cache_is_a_bounded_lru():
    cache = QueryCache(2)
    for key in ("a", "b"):
        cache.put(key, np.zeros(2))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", np.ones(2))
    assert cache.get("b") is None and cache.get("c") is not None
    assert (cache.hits, cache.misses) == (2, 1)
    assert QueryCache(0).get("a") is None
