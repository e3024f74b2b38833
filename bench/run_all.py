"""`make bench`: every bench script in turn (each bounded in time), then ONE table.

    python -m bench.run_all [--only search_latency,scale] [--quick]

Each script runs as its own process with a time limit (killed past it, with its whole process
group, so no service it started survives), writes bench/results/<name>.json, and the table
(goal, measured, ratio, met? / what limits it) is printed and written to bench/results/summary.md
with the machine (cores, RAM, CPU model) and the date. A script that fails or times out gets a row
saying so; the others still run.

--quick runs tiny sizes (a smoke run of the machinery, minutes; its figures mean little).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.results import RESULTS_DIR, machine, machine_line, markdown_table, read_results, text_table

ROOT = Path(__file__).resolve().parent.parent

# name -> (module, full-run args, quick-run args, time limit in seconds for the full run)
# bench.embedder measures the batcher against in-process encode of the same backend: it runs the
# torch backend (the in-process side is torch). bench.backends compares every backend with it.
TORCH_FP32 = ["--server-arg=--backend=torch", "--server-arg=--precision=fp32"]
BENCHES: dict[str, tuple[str, list[str], list[str], int]] = {
    "embedder": ("bench.embedder", TORCH_FP32, TORCH_FP32, 1200),
    "backends": ("bench.backends", [], ["--modes", "torch-fp32,openvino-auto", "--texts", "32",
                                        "--budget-s", "1", "--rounds", "1", "--queries", "5",
                                        "--score-queries", "20", "--searches", "10", "--phase-seconds", "10"], 1800),
    "search_latency": ("bench.search_latency", [], ["--catalogs", "ikarus,2k", "--queries", "20",
                                                    "--repeated", "5", "--phase-seconds", "15"], 1800),
    "build_throughput": ("bench.build_throughput", [], ["--rounds", "1"], 900),
    "embedder_start": ("bench.embedder_start", [], ["--rounds", "1"], 600),
    "scale": ("bench.scale", [], ["--sizes", "2k", "--queries", "30"], 3600),
    "horizontal": ("bench.horizontal", [], ["--queries", "40", "--threads", "0",
                                            "--phase-seconds", "15"], 900),
    "load": ("bench.load", [], ["--seconds", "10"], 600),
    "write_cost": ("bench.write_cost", [], ["--size", "5k", "--repeats", "1"], 900),
    "crash_soak": ("bench.crash_soak", [], ["--kills", "3", "--seconds", "30"], 1200),
    "milvus_store": ("bench.milvus_store", [], ["--size", "2k", "--queries", "30", "--seconds", "5"],
                     3600),
    "bm25_vs_tfidf": ("bench.bm25_vs_tfidf", [], ["--catalog", "data/products.csv"], 1800),
    "fusion_sweep": ("bench.fusion_sweep", [], ["--catalogs", "product_lines"], 1800),
}
# Opt-in (--with-1m): a million products. HNSW is built with M 16 / efConstruction 64 and IVF with
# 1024 lists (training 4*sqrt(N) = 4000 lists on 1M x 384 takes too long on 2 cores); flat at 1M is
# the brute-force reference (one query ~156 ms) and is left out. The search parameters are swept
# upwards until recall@10 reaches 0.95 (ef-search 512 gave 0.935 at 1M, nprobe 32 0.916).
SCALE_1M = ("bench.scale", ["--sizes", "1m", "--types", "hnsw,ivf", "--ivf-nlist", "1024", "--queries", "100",
                            "--hnsw-ef-search", "768,1024,1536", "--ivf-nprobe", "40,48,64",
                            "--name", "scale_1m"],
            ["--sizes", "2k", "--types", "hnsw,ivf", "--queries", "10", "--name", "scale_1m"], 5400)
QUICK_LIMIT_S = 600


def run_one(name: str, module: str, args: list[str], limit: int, log_dir: Path) -> dict:
    """Runs one bench; returns {"name", "rc", "seconds", "log"}; rc None = timed out."""
    log_path = log_dir / f"{name}.log"
    print(f"[run_all] {name}: python -m {module} {' '.join(args)} (limit {limit} s)", flush=True)
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(limit)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            _stop_group(proc)
    seconds = round(time.monotonic() - started, 1)
    state = "timed out" if rc is None else f"exit {rc}"
    print(f"[run_all] {name}: {state} after {seconds} s (log {log_path})", flush=True)
    return {"name": name, "rc": rc, "seconds": seconds, "log": str(log_path)}


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the bench's process group (its services too), SIGKILL what is left after 30 s."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    if proc.poll() is None:
        os.killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(pgid, signal.SIGKILL)  # anything the bench left behind (its services)
    except ProcessLookupError:
        pass
    proc.wait()


def failure_result(run: dict) -> dict:
    tail = Path(run["log"]).read_text(errors="replace").strip().splitlines()[-1:] or [""]
    why = "timed out" if run["rc"] is None else f"failed (exit {run['rc']})"
    return {"bench": run["name"], "rows": [{
        "goal": "(the bench itself)", "measured": f"{why} after {run['seconds']} s",
        "ratio": "", "met": False, "limits": f"see {run['log']}: {tail[0][:200]}"}]}


def summary_markdown(results: list[dict], info: dict, when: str, quick: bool) -> str:
    note = "\n**Quick run (tiny sizes): the figures only show that the machinery works.**\n" if quick else ""
    return (f"# Benchmark results\n\nMeasured {when} on {machine_line(info)} by `make bench` "
            f"(`python -m bench.run_all`). Every ratio compares two sides measured in the same run; "
            f"the machine may have been shared with other work, so absolute figures are noisy.\n{note}\n"
            f"{markdown_table(results)}\n\n{_when_lines(results)}\nDetails: `bench/results/<bench>.json`.\n")


def _when_lines(results: list[dict]) -> str:
    return "".join(f"- {r['bench']}: started {r.get('started', '?')}, {r.get('seconds', '?')} s\n"
                   for r in results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHES)}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--with-1m", action="store_true",
                        help="also the 1M-product scale run (bench/results/scale_1m.json; an hour or more)")
    parser.add_argument("--summarize", action="store_true",
                        help="only rebuild the table from the results already in bench/results/")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    benches = {**BENCHES, "scale_1m": SCALE_1M}
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or \
        list(BENCHES) + (["scale_1m"] if args.with_1m else [])
    unknown = [n for n in chosen if n not in benches]
    if unknown:
        parser.error(f"unknown bench(es): {', '.join(unknown)} (choose from {', '.join(benches)})")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    if not args.summarize:
        for name in chosen:
            module, full, quick, limit = benches[name]
            run = run_one(name, module, quick if args.quick else full,
                          QUICK_LIMIT_S if args.quick else limit, args.results_dir)
            if run["rc"] != 0:
                failed.append(failure_result(run))
    by_name = read_results(args.results_dir)
    for f in failed:  # a failed run's stale results must not pass for this run's
        by_name[f["bench"]] = f
    results = without_superseded_estimates(
        [normalize_result(n, by_name[n]) for n in benches if n in by_name])
    info = machine()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print()
    print(f"Benchmarks on {machine_line(info)}, {when}")
    print(text_table(results))
    path = args.results_dir / "summary.md"
    path.write_text(summary_markdown(results, info, when, args.quick))
    print(f"\n[run_all] wrote {path}")
    return 1 if failed else 0


def without_superseded_estimates(results: list[dict]) -> list[dict]:
    """The scale bench's linear estimates for 1M are dropped when a 1M run measured them."""
    if not any(r["bench"] == "scale_1m" and any(str(row.get("goal", "")).startswith("1m ")
                                                for row in r["rows"]) for r in results):
        return results  # no 1M run, or one that failed: the estimates stay
    return [{**r, "rows": [row for row in r["rows"] if not str(row.get("goal", "")).startswith("estimate at 1m")]}
            if r["bench"] == "scale" else r for r in results]


def normalize_result(name: str, result: dict) -> dict:
    """A results file without `rows` (another format) still gets a line in the table."""
    if isinstance(result.get("rows"), list):
        return {**result, "bench": name}
    if name == "embedder" and isinstance(result.get("service"), dict):
        try:
            return {"bench": name, "rows": embedder_rows(result), "started": result.get("started", "?"),
                    "seconds": result.get("seconds", "?")}
        except (KeyError, TypeError, ValueError):
            pass
    return {"bench": name, "rows": [{"goal": "(see the results file)", "measured": "", "ratio": "",
                                     "met": None, "limits": f"bench/results/{name}.json"}]}


def embedder_rows(result: dict) -> list[dict]:
    """Rows from bench/embedder.py's own format: {"in_process": {"anchor_texts_per_s"},
    "service": {"N clients, M text(s)/call": {"texts_per_s", "ratio"}}, "latency_ms": {...}}."""
    anchor = result["in_process"]["anchor_texts_per_s"]
    server = result.get("server", {})
    runtime = f" ({server['backend']} {server['precision']})" if server.get("backend") else ""
    rows = []
    for setup, v in result["service"].items():
        one_text = setup.endswith(" 1 text/call")
        goal = 0.9 if one_text and setup.startswith("32 clients") else \
            0.95 if not one_text and setup.startswith("1 client") else None
        rows.append({"goal": f"service{runtime} vs in-process encode, {setup}" +
                             (f" >= {goal}x" if goal else ""),
                     "measured": f"{v['texts_per_s']} texts/s vs in-process {anchor} texts/s",
                     "ratio": f"{v['ratio']:.2f}x", "met": None if goal is None else v["ratio"] >= goal,
                     "limits": ""})
    latency = result.get("latency_ms")
    if latency:
        overhead = latency["overhead_p50"]
        rows.append({"goal": "one short query through the service within 1.5 ms of in-process (p50)",
                     "measured": f"service p50 {latency['service_p50']} ms, in-process p50 "
                                 f"{latency['in_process_p50']} ms",
                     "ratio": f"{overhead:+.2f} ms", "met": overhead <= 1.5, "limits": ""})
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
