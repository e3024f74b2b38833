"""Search latency: what the index service adds on top of embedding the query, measured in one run.

    python -m bench.search_latency [--catalogs ikarus,100k] [--index-type-synthetic hnsw]

For each catalog (the shared ikarus catalog, built through the embedder; a synthetic one imported
with precomputed vectors), against one real embedder and one real index service on loopback:

The floor of one gRPC hop in Python on this machine is measured too: health `Check` round trips to
the index service (no work behind them). The index service's own CPU time per Search (user + system, from the OS, over each phase) is
recorded beside: with the embedder saturating the cores, that CPU is what the index service takes
from it, and it explains the overhead under concurrency.

1. one client, unique queries: for each query, `Embed([query])` straight to the embedder, then
   `Search(query)` through the index service (cache miss: the query was never seen), interleaved
   so that both sides see the same machine load. Overhead at p50 = the median over queries of
   (Search - Embed) of the same query (robust to the load drifting on a shared machine); the
   difference of the two p50s is printed beside it.
2. the same with 16 concurrent clients (a fresh set of unique queries).
3. the query cache on: repeated queries (already cached), 1 and 16 clients; Search never calls
   the embedder (query_vector_cached), so its latency is the index service alone.

Unique queries are the cache "off" case; the cache stays at its default size. Bounded: each
phase stops after --queries calls or --phase-seconds, whichever comes first.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import services, synthetic
from bench.measure import closed_loop, cpu_seconds, fmt_ms, summary
from bench.results import Row, failure_row, publish
from tests.procs import IKARUS_CSV

GOAL_OVERHEAD_MS = 2.0


def _prepare(spec: str, work: Path) -> tuple[str, Path, list[str]]:
    """(label, catalog csv, extra index flags) for "ikarus" or a synthetic size like "100k"."""
    if spec == "ikarus":
        return "ikarus (305)", IKARUS_CSV, []
    n = synthetic.parse_size(spec)
    csv_path = synthetic.write_catalog(work / f"catalog-{spec}.csv", n)
    npy = synthetic.LowRankVectors().write(work / f"vectors-{spec}.npy", n)
    return f"synthetic {synthetic.size_name(n)}", csv_path, ["--embeddings", str(npy)]


def _paired(stubs: services.Stubs, queries: list[str], concurrency: int, max_seconds: float,
            index_pid: int) -> dict:
    """Each client takes a unique query, times `Embed([query])` straight to the embedder, then
    `Search(query)` through the index service (a cache miss), and goes on with the next query.
    Both sides thus run under the same load (with N clients, the embedder sees ~N calls in flight
    either way); the paired median (Search - Embed of the same query) is robust to load drift."""
    def call(q):
        t0 = time.perf_counter()
        stubs.embed([q])
        t1 = time.perf_counter()
        r = stubs.search_text(q)
        t2 = time.perf_counter()
        return (t1 - t0, t2 - t1, (r.timing.embed_us, r.timing.search_us, r.timing.total_us,
                                   r.query_vector_cached))

    cpu_before = cpu_seconds(index_pid)
    load = closed_loop(call, queries, concurrency=concurrency, max_seconds=max_seconds)
    index_cpu_s = cpu_seconds(index_pid) - cpu_before
    embed_s = [e[0] for e in load.extras]
    search_s = [e[1] for e in load.extras]
    pair = np.subtract(search_s, embed_s)
    return {"embed": summary(embed_s), "search": {**summary(search_s), "errors": len(load.errors),
                                                  "first_error": load.errors[0] if load.errors else None},
            "server": _server_summary([e[2] for e in load.extras]),
            "pair_overhead_p50_ms": round(float(np.median(pair)) * 1000, 3) if len(pair) else None,
            "index_cpu_ms_per_search": (round(index_cpu_s * 1000 / len(load.extras), 3)
                                        if load.extras else None)}


def _round_trips(stubs: services.Stubs, calls: int, max_seconds: float) -> dict:
    """Health Check round trips to the index service: the cost of one gRPC hop, nothing behind it."""
    health = health_pb2_grpc.HealthStub(stubs.index_channel)
    request = health_pb2.HealthCheckRequest()
    return closed_loop(lambda _: health.Check(request, timeout=stubs.timeout), range(calls),
                       concurrency=1, max_seconds=max_seconds).summary()


def _server_summary(server: list[tuple]) -> dict:
    """Medians of the index service's own timing (SearchResponse.timing), microseconds."""
    if not server:
        return {}
    a = np.array([s[:3] for s in server], dtype=np.float64)
    return {"embed_us_p50": float(np.median(a[:, 0])), "search_us_p50": float(np.median(a[:, 1])),
            "search_us_p99": float(np.percentile(a[:, 1], 99)),
            "total_us_p50": float(np.median(a[:, 2])),
            "inside_minus_embed_us_p50": float(np.median(a[:, 2] - a[:, 0])),
            "cached_fraction": float(np.mean([s[3] for s in server]))}


def _cached(stubs: services.Stubs, queries: list[str], calls: int, concurrency: int,
            max_seconds: float) -> dict:
    for q in queries:  # make sure every one is in the cache
        stubs.search_text(q)
    items = [queries[i % len(queries)] for i in range(calls)]

    def search(q):
        r = stubs.search_text(q)
        return (r.timing.embed_us, r.timing.search_us, r.timing.total_us, r.query_vector_cached)

    s = closed_loop(search, items, concurrency=concurrency, max_seconds=max_seconds)
    return {"search": s.summary(), "server": _server_summary(s.extras)}


def bench_catalog(spec: str, args, embedder_address: str, work: Path) -> dict:
    label, csv_path, extra = _prepare(spec, work)
    index_type = "flat" if spec == "ikarus" else args.index_type_synthetic
    data_dir = work / f"data-{spec}"
    pool = synthetic.query_texts(2 * args.queries + args.repeated, seed=args.seed)
    unique_1, unique_16 = pool[:args.queries], pool[args.queries:2 * args.queries]
    repeated = pool[2 * args.queries:]
    started = time.monotonic()
    with services.index_service(embedder_address, csv_path, data_dir, "--index-type", index_type,
                                *extra, timeout=args.build_timeout) as idx:
        ready_s = time.monotonic() - started
        with services.Stubs(idx.address, embedder_address) as stubs:
            for q in synthetic.query_texts(10, seed=args.seed + 1):  # warm up both paths
                stubs.embed([q])
                stubs.search_text(q)
            out = {"label": label, "index_type": index_type, "ready_s": round(ready_s, 1),
                   "products": stubs.stats().product_count}
            out["round_trip"] = _round_trips(stubs, args.queries, args.phase_seconds)
            pid = idx.proc.pid
            out["one_client"] = _paired(stubs, unique_1, 1, args.phase_seconds, pid)
            out["concurrent"] = _paired(stubs, unique_16, args.concurrency, args.phase_seconds, pid)
            out["cached_one_client"] = _cached(stubs, repeated, args.queries, 1, args.phase_seconds)
            out["cached_concurrent"] = _cached(stubs, repeated, 2 * args.queries, args.concurrency,
                                               args.phase_seconds)
    return out


def rows_for(result: dict, concurrency: int) -> list[Row]:
    label = f"{result['label']}, {result['index_type']}"
    rows = []
    for key, who in (("one_client", "1 client"), ("concurrent", f"{concurrency} clients")):
        s, e = result[key]["search"], result[key]["embed"]
        if not s["n"] or not e["n"]:
            rows.append(Row(f"Search adds <= {GOAL_OVERHEAD_MS:g} ms p50 ({label}, {who})",
                            "no successful calls", "", False,
                            result[key]["search"].get("first_error") or ""))
            continue
        overhead = result[key]["pair_overhead_p50_ms"]
        inside = result[key]["server"].get("inside_minus_embed_us_p50", 0) / 1000
        met = overhead <= GOAL_OVERHEAD_MS
        rows.append(Row(
            goal=f"Search adds <= {GOAL_OVERHEAD_MS:g} ms p50 ({label}, {who}, unique queries)",
            measured=(f"Search p50 {fmt_ms(s['p50_ms'])} p99 {fmt_ms(s['p99_ms'])}; Embed alone "
                      f"p50 {fmt_ms(e['p50_ms'])} p99 {fmt_ms(e['p99_ms'])} (difference of p50s "
                      f"{s['p50_ms'] - e['p50_ms']:+.2f} ms); in the service besides embedding "
                      f"{inside:.2f} ms"),
            ratio=f"{overhead:+.2f} ms (paired median)",
            met=met,
            limits="" if met else _limit_text(result, key, overhead, inside, concurrency)))
    for key, who in (("cached_one_client", "1 client"), ("cached_concurrent", f"{concurrency} clients")):
        s = result[key]["search"]
        cached = result[key]["server"].get("cached_fraction", 0.0)
        uncached = result["one_client" if key == "cached_one_client" else "concurrent"]["search"]
        ratio = (f"{s['p50_ms'] / uncached['p50_ms']:.2g}x of uncached"
                 if s["n"] and uncached["n"] else "")
        rows.append(Row(
            goal=f"repeated query skips the embedder ({label}, {who}, cache on)",
            measured=(f"Search p50 {fmt_ms(s['p50_ms'])} p99 {fmt_ms(s['p99_ms'])}, "
                      f"{cached:.0%} cache hits"),
            ratio=ratio, met=bool(s["n"]) and cached >= 0.99,
            limits="" if cached >= 0.99 else "query cache off or too small"))
    return rows


def _limit_text(result: dict, key: str, overhead: float, inside_ms: float, concurrency: int) -> str:
    search_us = result[key]["server"].get("search_us_p50", 0) / 1000
    hop = overhead - inside_ms
    text = (f"FAISS+filters {search_us:.2f} ms, rest of the service {inside_ms - search_us:.2f} ms, "
            f"extra gRPC hop + bigger reply {hop:.2f} ms (client-observed)")
    floor = result.get("round_trip", {}).get("p50_ms")
    if floor is not None:
        text += f"; one gRPC round trip alone (health Check) p50 {floor:.2f} ms"
    cpu = result[key].get("index_cpu_ms_per_search")
    if key == "concurrent" and cpu:
        cores = os.cpu_count() or 1
        text += (f"; CPU-bound: the index service uses {cpu:.2f} ms of CPU per Search, taken from "
                 f"the saturated embedder: {concurrency} clients / {cores} cores x {cpu:.2f} ms = "
                 f"~{concurrency / cores * cpu:.0f} ms expected")
    elif cpu:
        text += f"; index service CPU per Search {cpu:.2f} ms"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search_latency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogs", default="ikarus,100k",
                        help="comma-separated: ikarus and/or synthetic sizes (10k, 100k)")
    parser.add_argument("--index-type-synthetic", default="hnsw", choices=("flat", "hnsw", "ivf"))
    parser.add_argument("--queries", type=int, default=200, help="calls per phase (unique queries)")
    parser.add_argument("--repeated", type=int, default=20, help="distinct repeated (cached) queries")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--phase-seconds", type=float, default=45.0, help="time bound per phase")
    parser.add_argument("--build-timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embedder", default="",
                        help="use this running embedder (HOST:PORT) instead of starting one")
    parser.add_argument("--name", default="search_latency", help="results file name")
    args = parser.parse_args(argv)
    started = time.time()
    results, rows = [], []
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp, \
            services.embedder_address(args.embedder) as embedder:
        for spec in [s.strip() for s in args.catalogs.split(",") if s.strip()]:
            print(f"[search_latency] {spec}: starting", flush=True)
            try:
                results.append(bench_catalog(spec, args, embedder, Path(tmp)))
                rows += rows_for(results[-1], args.concurrency)
            except Exception as exc:  # noqa: BLE001 - one catalog failing must not lose the others
                rows.append(failure_row(f"search latency, catalog {spec}", exc))
            print(f"[search_latency] {spec}: done", flush=True)
            publish(args.name, rows, {"catalogs": results}, args, started)  # partial results survive
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
