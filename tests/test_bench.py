"""The bench scripts run end to end at tiny sizes (no timing assertions: figures are not checked,
only that each script measures, writes its results and stops what it started), plus the pieces
that can be checked exactly: synthetic data, recall, the summary table, run_all's time limits."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from bench import run_all, synthetic
from bench.fusion_halvings import halvings
from bench.results import Row, markdown_table, read_results, write_result
from tests import milvus_server
from index_service.catalog_reader import read_catalog
from client.fusion_sweep import score_sweep, sweep_settings, weighted_name
from tests.procs import ROOT


# ---- pieces checked exactly -----------------------------------------------------------------
def test_synthetic_vectors_are_normalized_seeded_and_low_rank(tmp_path):
    gen = synthetic.LowRankVectors(seed=3)
    path = gen.write(tmp_path / "v.npy", 1000)
    x = np.load(path)
    assert x.shape == (1000, synthetic.DIMENSION) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    again = synthetic.LowRankVectors(seed=3).write(tmp_path / "w.npy", 1000)
    np.testing.assert_array_equal(x, np.load(again))
    # energy concentrates in the first `rank` directions (unlike uniform noise)
    s = np.linalg.svd(x, compute_uv=False) ** 2
    assert s[:synthetic.RANK].sum() / s.sum() > 0.7
    q = gen.queries(5)
    assert not np.isin(q, x).all(axis=1).any()  # queries are not copies of catalog rows


def test_exact_top_k_and_recall(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5000, 16)).astype(np.float32)
    q = rng.standard_normal((7, 16)).astype(np.float32)
    truth = synthetic.exact_top_k(x, q, 10)
    np.testing.assert_array_equal(truth, np.argsort(-(q @ x.T), axis=1)[:, :10])
    assert synthetic.recall_at_k(truth.tolist(), truth) == 1.0
    half = [list(t[:5]) + [-1] * 5 for t in truth.tolist()]
    assert synthetic.recall_at_k(half, truth) == 0.5


def test_synthetic_catalog_reads_with_the_recipe(tmp_path):
    path = synthetic.write_catalog(tmp_path / "c.csv", 250)
    catalog, report = read_catalog(path)
    assert len(catalog) == 250 and report.repeated_ids == 0 and not report.skipped_rows
    assert catalog.ids[0] == "syn-0000000" and catalog.ids[249] == "syn-0000249"
    assert catalog.breadcrumb(0)[:2] == ["Home & Kitchen", "Furniture"]


def test_parse_size_and_queries():
    assert [synthetic.parse_size(s) for s in ("10k", "1m", "2500", "1.5k")] == [10_000, 1_000_000, 2500, 1500]
    with pytest.raises(ValueError):
        synthetic.parse_size("0")
    assert synthetic.size_name(100_000) == "100k" and synthetic.size_name(1_000_000) == "1m"
    queries = synthetic.query_texts(500)
    assert len(set(queries)) == 500 and queries == synthetic.query_texts(500)


def _sweep_where(good: set[str]):
    """A sweep over 20 products in two categories where the settings in `good` answer every
    title with its category peers and every other setting with the other category."""
    ids = [f"p{i:02d}" for i in range(20)]
    category = {pid: "AB"[i % 2] for i, pid in enumerate(ids)}

    def answers(pid: str, right: bool) -> list[str]:
        return [pid] + [p for p in ids if p != pid and (category[p] == category[pid]) == right]
    hits = {name: {pid: answers(pid, name in good) for pid in ids} for name in sweep_settings()}
    return score_sweep(category, ids, hits)


def test_halvings_count_how_often_the_choice_reaches_the_best_single_mode():
    fused = halvings(_sweep_where({weighted_name(0.5)}), rounds=30, seed=3)
    assert fused["reached"] == 1.0 and fused["mean_gap"] == fused["worst_gap"] == 1.0
    assert fused["chosen"] == {weighted_name(0.5): 30} and fused["rounds"] == 30
    lexical_only = halvings(_sweep_where({"lexical"}), rounds=30, seed=3)
    assert lexical_only["reached"] == 0.0 and lexical_only["worst_gap"] == -1.0
    assert halvings(_sweep_where({"lexical", "rrf"}), rounds=30, seed=3)["reached"] == 1.0
    assert halvings(_sweep_where(set()), rounds=5, seed=3) == halvings(_sweep_where(set()), 5, 3)


def test_summary_table_from_results(tmp_path):
    write_result("scale", [Row("1m hnsw: recall >= 0.95", "recall 0.97 | FAISS 1 ms", "0.97", True)],
                 {"x": np.float32(1.5)}, results_dir=tmp_path)
    (tmp_path / "embedder.json").write_text(json.dumps({"other": "format"}))
    assert set(read_results(tmp_path)) == {"scale", "embedder"}
    subprocess.run([sys.executable, "-m", "bench.run_all", "--summarize", "--results-dir", str(tmp_path)],
                   cwd=ROOT, check=True, timeout=60, capture_output=True)
    summary = (tmp_path / "summary.md").read_text()
    assert "| scale | 1m hnsw: recall >= 0.95 | recall 0.97 \\| FAISS 1 ms | 0.97 | yes |" in summary
    assert "| embedder | (see the results file) |" in summary
    assert f"{os.cpu_count()} cores" in summary and "GiB RAM" in summary
    assert markdown_table([]).count("\n") == 1


def test_embedder_results_in_their_own_format_become_rows():
    result = run_all.normalize_result("embedder", {
        "in_process": {"anchor_texts_per_s": 50.0},
        "service": {"32 clients, 1 text/call": {"texts_per_s": 46.0, "ratio": 0.92},
                    "1 client, 64 texts/call": {"texts_per_s": 45.0, "ratio": 0.9},
                    "8 clients, 1 text/call": {"texts_per_s": 40.0, "ratio": 0.8}},
        "latency_ms": {"service_p50": 9.0, "in_process_p50": 8.0, "overhead_p50": 1.0},
        "started": "2026-11-28T18:32:10Z", "seconds": 91.8})
    assert [r["met"] for r in result["rows"]] == [True, False, None, True]
    assert (result["started"], result["seconds"]) == ("2026-11-28T18:32:10Z", 91.8)


def test_run_one_records_failure_and_kills_past_its_limit(tmp_path):
    failed = run_all.run_one("broken", "bench.no_such_bench", [], 60, tmp_path)
    assert failed["rc"] not in (0, None)
    assert run_all.failure_result(failed)["rows"][0]["met"] is False
    started = time.monotonic()
    slow = run_all.run_one("slow", "timeit", ["-n", "1", "-r", "1", "import time; time.sleep(60)"], 1,
                           tmp_path)
    assert slow["rc"] is None and time.monotonic() - started < 40
    assert "timed out" in run_all.failure_result(slow)["rows"][0]["measured"]


# ---- the scripts, end to end at tiny sizes (on the session's shared embedder) ---------------
def run_bench(module: str, args: list[str], results_dir, timeout: float = 400) -> dict:
    env = {**os.environ, "BENCH_RESULTS_DIR": str(results_dir)}
    done = subprocess.run([sys.executable, "-m", module, *args, "--name", "out"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((results_dir / "out.json").read_text())
    assert result["rows"] and all(row["goal"] and row["measured"] for row in result["rows"])
    return result


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_write_cost_bench_tiny(tmp_path):
    result = run_bench("bench.write_cost", ["--size", "2k", "--repeats", "1"], tmp_path, timeout=240)
    assert len(result["rows"]) == 5
    figures = result["details"]
    assert figures["products"] == 2000 and figures["batch"] == 10
    assert all(figures[key] > 0 for key in ("lexical_refit_s", "vectors_copy_s", "compaction_s"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_scale_bench_tiny(shared_embedder, tmp_path):
    result = run_bench("bench.scale", ["--sizes", "300", "--types", "flat,hnsw,ivf", "--queries", "8",
                                       "--embedder", shared_embedder.address], tmp_path)
    runs = {r["type"]: r for r in result["details"]["runs"]}
    assert len(runs) == 3, result["rows"]
    assert set(runs) == {"flat", "hnsw", "ivf"}
    # exact search through the service agrees with the exact top 10 computed by the bench
    assert runs["flat"]["recall_at_10"] == 1.0
    for r in runs.values():
        assert r["queries"] == 8 and r["rss_after_start_mb"] > 0 and "startup_note" not in r


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_search_latency_bench_tiny(shared_embedder, tmp_path):
    result = run_bench("bench.search_latency", [
        # 40 searches: the OS counts CPU in 10 ms ticks, and 6 (~2 ms of index CPU each) could
        # read as 0.0 (seen once with two pytest workers)
        "--catalogs", "300", "--queries", "40", "--repeated", "2", "--concurrency", "3",
        "--phase-seconds", "30", "--embedder", shared_embedder.address], tmp_path)
    assert result["details"]["catalogs"], result["rows"]
    cat = result["details"]["catalogs"][0]
    assert cat["products"] == 300
    assert cat["one_client"]["search"]["n"] == 40 and cat["one_client"]["embed"]["n"] == 40
    assert cat["one_client"]["server"]["cached_fraction"] == 0.0  # unique queries miss the cache
    assert cat["cached_concurrent"]["server"]["cached_fraction"] == 1.0
    assert cat["one_client"]["index_cpu_ms_per_search"] > 0  # the index service's own CPU, from the OS
    assert cat["round_trip"]["n"] == 40 and cat["round_trip"]["p50_ms"] > 0  # one bare gRPC hop
    assert len(result["rows"]) == 4


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_build_throughput_bench_tiny(shared_embedder, tmp_path):
    csv_path = synthetic.write_catalog(tmp_path / "tiny.csv", 24)
    result = run_bench("bench.build_throughput", ["--catalog", str(csv_path), "--rounds", "1",
                                                  "--embedder", shared_embedder.address], tmp_path)
    assert result["details"]["rounds"][0]["products"] == 24
    assert result["details"]["rounds"][0]["in_process_texts_per_s"] > 0


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(not milvus_server.available(), reason="no .venv-milvus (make test installs it)")
def test_milvus_store_bench_tiny(shared_embedder, tmp_path):
    result = run_bench("bench.milvus_store", ["--size", "400", "--queries", "10", "--clients", "1,2",
                                              "--seconds", "3", "--embedder",
                                              shared_embedder.address], tmp_path, timeout=800)
    runs = result["details"]["runs"]
    assert set(runs) == {"faiss", "milvus"}, result["rows"]
    for run in runs.values():  # both stores searched every query, and found the same neighbours
        assert run["end_to_end"]["1"]["n"] == 10 and run["recall_at_10"] >= 0.9
    assert len(result["rows"]) == 4


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fusion_sweep_bench_on_the_product_lines_catalog(shared_embedder, tmp_path):
    """The sweep end to end on our bare-title catalog (--columns), then the service restarted with
    the flags it printed: hybrid as served then is the chosen setting, to the last digit."""
    result = run_bench("bench.fusion_sweep", ["--catalogs", "product_lines", "--out",
                                              str(tmp_path / "out"), "--embedder",
                                              shared_embedder.address], tmp_path, timeout=800)
    lines = result["details"]["product_lines"]
    assert lines["products"] == 209 and lines["flags"].startswith("--hybrid-fusion ")
    best = lines["best"]
    served = "rrf" if best == "rrf" else f"weighted, alpha {float(best.split('@')[1]):g}"
    assert lines["served"] == served and lines["stats"]["hybrid_fusion"] in best
    assert lines["served_report"]["hybrid_served"] == lines["report"]["hybrid_best"]
    row = result["rows"][0]
    assert row["met"] == (lines["served_report"]["hybrid_served"] >= max(
        lines["report"]["semantic"], lines["report"]["lexical"]))
    spread = lines["halvings"]
    assert spread["rounds"] == 200 and 0.0 <= spread["reached"] <= 1.0
    assert spread["worst_gap"] <= spread["mean_gap"] and sum(spread["chosen"].values()) <= 200
    assert result["rows"][1]["ratio"] == f"{spread['reached']:.1%}"
    for name in ("fusion_sweep.json", "fusion_sweep.png", "report.md", "metrics.json"):
        assert (tmp_path / "out" / "product_lines" / name).exists(), name


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_backends_bench_tiny_compares_each_backend_with_in_process_torch(tmp_path):
    csv_path = synthetic.write_catalog(tmp_path / "tiny.csv", 24)
    result = run_bench("bench.backends", [
        "--catalog", str(csv_path), "--modes", "torch-fp32,openvino-auto", "--texts", "16",
        "--budget-s", "0.5", "--rounds", "1", "--queries", "3", "--score-queries", "5", "--batch", "8",
        "--searches", "6", "--phase-seconds", "20"], tmp_path, timeout=800)
    modes = result["details"]["modes"]
    assert set(modes) == {"torch-fp32", "openvino-auto"}
    assert (modes["torch-fp32"]["backend"], modes["torch-fp32"]["precision"]) == ("torch", "fp32")
    assert modes["openvino-auto"]["backend"] == "openvino"
    assert modes["torch-fp32"]["search_1"] == 1.0  # the torch backend is the Search yardstick
    for mode in modes.values():
        assert mode["quality_ok"] and mode["anchor_texts_per_s"] > 0 and mode["build"] > 0
    # the torch backend through the service: the reference's own arithmetic, so its scores hold
    assert modes["torch-fp32"]["example_score_error_max"] < 1e-4
    assert modes["torch-fp32"]["score_queries"] == 5 and modes["torch-fp32"]["query_top5_same"] == 1.0
    goals = [row for row in result["rows"] if row["goal"].startswith("openvino-auto")]
    assert len(goals) == 8 and all(row["met"] is not None for row in goals)
    quality_rows = ("vectors vs", "top-5 scores within")
    assert all(row["met"] is None for row in result["rows"] if row["goal"].startswith("torch-fp32")
               and not any(what in row["goal"] for what in quality_rows))
    assert [row["met"] for row in result["rows"] if row["goal"].startswith("torch-fp32")
            and "top-5 scores within" in row["goal"]] == [True]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_horizontal_bench_tiny_balances_over_both_embedders(tmp_path):
    csv_path = synthetic.write_catalog(tmp_path / "tiny.csv", 40)
    result = run_bench("bench.horizontal", ["--catalog", str(csv_path), "--queries", "12",
                                            "--concurrency", "4", "--threads", "1",
                                            "--phase-seconds", "30"], tmp_path)
    two = result["details"]["runs"][0]["two"]
    assert two["load"]["n"] == 12 and two["load"]["errors"] == 0
    assert all(n > 0 for n in two["texts_per_embedder"]), two  # round-robin reached both


def test_embedder_start_rows_hold_each_start_to_the_goal_and_compare_cached_with_full():
    from bench.embedder_start import rows_for
    medians = {"first": {"seconds": 16.0, "rss_mb": 780.0}, "full": {"seconds": 11.0, "rss_mb": 750.0},
               "cached": {"seconds": 1.1, "rss_mb": 300.0}}
    rounds = [{"cached": {"torch_free": True}}]
    rows = rows_for(medians, rounds)
    assert [row.met for row in rows] == [False, True, True, None]
    assert rows[3].ratio == "0.10x time, 0.40x memory" and rows[3].limits == ""
    assert "loaded torch" in rows_for(medians, [{"cached": {"torch_free": False}}])[3].limits


def test_1m_estimates_give_way_to_a_1m_measurement():
    scale = {"bench": "scale", "rows": [{"goal": "100k hnsw: recall", "measured": "x"},
                                        {"goal": "estimate at 1m hnsw (linear)", "measured": "~"}]}
    assert run_all.without_superseded_estimates([scale]) == [scale]
    failed = {"bench": "scale_1m", "rows": [{"goal": "(the bench itself)", "measured": "timed out"}]}
    assert run_all.without_superseded_estimates([scale, failed]) == [scale, failed]
    measured = {"bench": "scale_1m", "rows": [{"goal": "1m hnsw: recall", "measured": "y", "met": True}]}
    kept = run_all.without_superseded_estimates([scale, measured])
    assert [row["goal"] for row in kept[0]["rows"]] == ["100k hnsw: recall"] and kept[1] == measured
