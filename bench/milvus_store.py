"""The two stores side by side, in one run: Search through the index service on FAISS HNSW and on
Milvus HNSW (the real Milvus 2.3.5 server from .venv-milvus, started here, stopped by pid), the
same synthetic catalog and vectors, the same HNSW build (M 16, efConstruction 64) and search
breadth (ef 256).

    python -m bench.milvus_store [--size 100k] [--queries 300] [--clients 1,8]

Both stores import the vectors (`--embeddings`: no embedding), and queries are precomputed
vectors (SearchRequest.vector), so what differs is only the store: the index service's own
search (FAISS in-process) against a round trip to Milvus (its proxy, query node and segcore).
Milvus is measured once its HNSW index covers every row (a fresh segment is otherwise searched
without it). Reported: p50/p99 end to end at each client count, the service's search time
(SearchResponse.timing.search_us), recall@10 against the exact top 10, and the fill/build time.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import services, synthetic
from bench.measure import closed_loop, fmt_ms, summary
from bench.results import Row, failure_row, publish
from tests.milvus_server import MilvusServer
from tests.procs import ServiceProcess, free_port

HNSW = ["--hnsw-m", "16", "--hnsw-ef-construction", "64", "--hnsw-ef-search", "256"]
COLLECTION = "bench_products"


def _row_of(product_id: str) -> int:
    return int(product_id.rsplit("-", 1)[1])


def measure(address: str, queries: np.ndarray, truth: np.ndarray, clients: list[int],
            seconds: float) -> dict:
    """Recall and latency (one client, then each concurrency) of vector searches."""
    out: dict = {}
    with services.Stubs(address, timeout=60.0) as stubs:
        for q in queries[:10]:
            stubs.search_vector(q.tolist(), 10)  # warm up
        found, search_s, e2e_s = [], [], []
        for q in queries:
            t0 = time.perf_counter()
            reply = stubs.search_vector(q.tolist(), 10)
            e2e_s.append(time.perf_counter() - t0)
            search_s.append(reply.timing.search_us / 1e6)
            found.append([_row_of(h.product.id) for h in reply.hits])
        out["recall_at_10"] = round(synthetic.recall_at_k(found, truth, 10), 4)
        out["service_search"] = summary(search_s)
        out["end_to_end"] = {1: summary(e2e_s)}
        vectors = [q.tolist() for q in queries]
        for n in (c for c in clients if c > 1):
            load = closed_loop(lambda v: stubs.search_vector(v, 10), vectors * 20, concurrency=n,
                               max_seconds=seconds)
            out["end_to_end"][n] = load.summary()
    return out


def wait_for_milvus_index(uri: str, timeout: float) -> float:
    """Seconds until Milvus's HNSW index covers every row of the collection."""
    from pymilvus import MilvusClient
    client, started = MilvusClient(uri=uri), time.monotonic()
    client.flush(COLLECTION)
    while time.monotonic() - started < timeout:
        info = client.describe_index(COLLECTION, "vector")
        if info.get("pending_index_rows", 1) == 0 and info.get("indexed_rows") == info.get("total_rows"):
            break
        time.sleep(2)
    client.close()
    return time.monotonic() - started


def run_store(store: str, csv_path: Path, npy: Path, work: Path, embedder: str, milvus_uri: str,
              args) -> tuple[ServiceProcess, dict]:
    port = free_port()
    flags = (["--data-dir", str(work / "faiss"), "--index-type", "hnsw"] if store == "faiss" else
             ["--store", "milvus", "--milvus-uri", milvus_uri, "--milvus-collection", COLLECTION])
    proc = ServiceProcess("index_service", [
        "--port", str(port), "--embedder", embedder, "--catalog", str(csv_path), "--embeddings",
        str(npy), *HNSW, *flags], port)
    t0 = time.monotonic()
    fill_s = services.serving_time(proc, t0, args.build_timeout)
    info = {"store": store, "fill_or_build_s": round(fill_s, 1)}
    if store == "milvus":
        info["index_wait_s"] = round(wait_for_milvus_index(milvus_uri, args.build_timeout), 1)
    return proc, info


def rows_for(runs: dict, n: int, clients: list[int]) -> list[Row]:
    faiss, milvus = runs.get("faiss"), runs.get("milvus")
    if not (faiss and milvus):
        return []
    name = synthetic.size_name(n)
    limits = ("2 cores shared by Milvus (proxy, query node, segcore threads, its etcd), the index "
              "service, and the clients; every Milvus search is a second gRPC hop")
    rows = []
    for c in clients:
        f, m = faiss["end_to_end"][c], milvus["end_to_end"][c]
        rows.append(Row(
            goal=f"Search through the service, {name} HNSW, {c} client(s): Milvus vs FAISS",
            measured=(f"FAISS p50 {fmt_ms(f['p50_ms'])} p99 {fmt_ms(f['p99_ms'])}; "
                      f"Milvus p50 {fmt_ms(m['p50_ms'])} p99 {fmt_ms(m['p99_ms'])}"),
            ratio=f"{m['p50_ms'] / f['p50_ms']:.2f}x p50", met=None, limits=limits))
    rows.append(Row(goal=f"recall@10, {name} HNSW (ef 256)",
                    measured=f"FAISS {faiss['recall_at_10']:.3f}; Milvus {milvus['recall_at_10']:.3f}",
                    ratio=f"{milvus['recall_at_10'] - faiss['recall_at_10']:+.3f}", met=None))
    rows.append(Row(goal=f"Import {name} vectors (no embedding) until SERVING",
                    measured=(f"FAISS build {faiss['fill_or_build_s']:.0f} s; Milvus fill "
                              f"{milvus['fill_or_build_s']:.0f} s + index {milvus['index_wait_s']:.0f} s"),
                    met=None))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.milvus_store", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="100k")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--seconds", type=float, default=30.0, help="per concurrent phase")
    parser.add_argument("--build-timeout", type=float, default=3600.0)
    parser.add_argument("--embedder", default="",
                        help="use this running embedder (HOST:PORT) instead of starting one")
    parser.add_argument("--name", default="milvus_store")
    args = parser.parse_args(argv)
    n, clients = synthetic.parse_size(args.size), [int(c) for c in args.clients.split(",")]
    started, runs, failures = time.time(), {}, []
    with tempfile.TemporaryDirectory(prefix="bench-milvus-") as tmp, \
            services.embedder_address(args.embedder) as embedder:
        work = Path(tmp)
        csv_path, npy = work / "catalog.csv", work / "vectors.npy"
        generator = synthetic.LowRankVectors()
        synthetic.write_catalog(csv_path, n)
        generator.write(npy, n)
        queries = generator.queries(args.queries)
        truth = synthetic.exact_top_k(np.load(npy, mmap_mode="r"), queries, 10)
        milvus = MilvusServer(work / "milvus").start()
        try:
            for store in ("faiss", "milvus"):
                try:
                    proc, info = run_store(store, csv_path, npy, work, embedder, milvus.uri, args)
                    try:
                        runs[store] = {**info, **measure(proc.address, queries, truth, clients,
                                                         args.seconds)}
                    finally:
                        proc.terminate()
                    print(f"[milvus_store] {store}: {runs[store]['end_to_end'][1]}", flush=True)
                except Exception as exc:  # noqa: BLE001 - the other store still reports
                    failures.append(failure_row(f"{store} store", exc))
        finally:
            milvus.stop()
    publish(args.name, rows_for(runs, n, clients) + failures, {"runs": runs}, args, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
