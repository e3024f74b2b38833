"""Load: 16 concurrent clients of mixed Search / SimilarProducts / GetProduct for 60 s against a
real embedder + index service pair on data/products.csv (loopback only).

Reports errors (the goal: zero), p50/p99 per RPC, and the index service's RSS sampled once a
second across the run (after a warm-up): start, end, max (the goal: flat, no growth).

    .venv/bin/python -m bench.load [--seconds 60] [--clients 16] [--max-calls 2000000]

Bounded twice: by --seconds and by --max-calls, whichever comes first. Queries are product titles
(repeated: the index's query cache answers most) with a share of fresh texts that must go through
the embedder (--fresh-share).
"""
from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from pathlib import Path

import grpc

from bench.measure import closed_loop, rss_mb, summary
from bench.results import Row, publish
from bench.services import CHANNEL_OPTIONS, embedder_address, index_service
from client.generated.recsys.v1 import index_pb2 as pb
from client.generated.recsys.v1 import index_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
MIX = (("search", 0.5), ("similar", 0.3), ("get", 0.2))
CALL_TIMEOUT_S = 10.0
RSS_GROWTH_GOAL = 0.05  # end vs start, after the warm-up


def _ids(stub) -> list[str]:
    ids, token = [], ""
    while True:
        page = stub.ListProducts(pb.ListProductsRequest(page_size=1000, page_token=token), timeout=30)
        ids += [p.id for p in page.products]
        token = page.next_page_token
        if not token:
            return ids


def _plan(ids: list[str], titles: list[str], n: int, fresh_share: float, seed: int) -> list:
    rng = random.Random(seed)
    ops, weights = zip(*MIX)
    plan = []
    for i in range(n):
        op = rng.choices(ops, weights)[0]
        if op == "search":
            text = rng.choice(titles)
            plan.append(("search", f"{text} {i}" if rng.random() < fresh_share else text))
        else:
            plan.append((op, rng.choice(ids)))
    return plan


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every_s: float = 1.0):
        super().__init__(daemon=True)
        self.pid, self.every_s, self.samples, self.stop = pid, every_s, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), rss_mb(self.pid)))
            self.stop.wait(self.every_s)


def run(index_address: str, index_pid: int, *, seconds: float, clients: int, max_calls: int,
        fresh_share: float, warmup_s: float, seed: int = 1) -> dict:
    channel = grpc.insecure_channel(index_address, options=CHANNEL_OPTIONS)
    stub = index_pb2_grpc.IndexStub(channel)
    ids = _ids(stub)
    titles = [stub.GetProduct(pb.GetProductRequest(product_id=i), timeout=10).title for i in ids]

    def call(item):
        op, arg = item
        if op == "search":
            stub.Search(pb.SearchRequest(query=arg, k=10), timeout=CALL_TIMEOUT_S)
        elif op == "similar":
            stub.SimilarProducts(pb.SimilarProductsRequest(product_id=arg, k=10), timeout=CALL_TIMEOUT_S)
        else:
            stub.GetProduct(pb.GetProductRequest(product_id=arg), timeout=CALL_TIMEOUT_S)
        return op

    closed_loop(call, _plan(ids, titles, 100_000, fresh_share, seed + 1), concurrency=clients,
                max_seconds=warmup_s)
    sampler = RssSampler(index_pid)
    sampler.start()
    result = closed_loop(call, _plan(ids, titles, max_calls, fresh_share, seed), concurrency=clients,
                         max_seconds=seconds)
    sampler.stop.set()
    sampler.join()
    sampler.samples.append((time.monotonic(), rss_mb(index_pid)))
    channel.close()
    per_op = {op: summary([lat for lat, o in zip(result.latencies_s, result.extras) if o == op])
              for op, _ in MIX}
    rss = [mb for _, mb in sampler.samples]
    return {"calls": result.calls, "errors": len(result.errors), "first_errors": result.errors[:5],
            "wall_s": round(result.wall_s, 1), "calls_per_s": round(result.throughput, 1),
            "per_rpc": per_op, "rss_mb": {"start": rss[0], "end": rss[-1], "max": max(rss),
                                          "min": min(rss), "samples": len(rss)},
            "products": len(ids), "clients": clients, "fresh_share": fresh_share}


def rows_of(fig: dict) -> list[Row]:
    rows = [Row(goal=f"zero errors ({fig['clients']} clients, {fig['wall_s']:.0f} s mixed load)",
                measured=f"{fig['calls']} calls, {fig['errors']} errors", ratio=str(fig["errors"]),
                met=fig["errors"] == 0,
                limits="; ".join(fig["first_errors"])[:300])]
    for op, s in fig["per_rpc"].items():
        rows.append(Row(goal=f"{op}: p50 / p99 under load (no goal)",
                        measured=f"n={s['n']}", ratio=f"{s['p50_ms']} / {s['p99_ms']} ms"))
    rss = fig["rss_mb"]
    growth = (rss["end"] - rss["start"]) / rss["start"]
    rows.append(Row(goal=f"index RSS flat (end vs start <= +{RSS_GROWTH_GOAL:.0%})",
                    measured=f"start {rss['start']} MiB, end {rss['end']} MiB, max {rss['max']} MiB",
                    ratio=f"{growth:+.1%}", met=growth <= RSS_GROWTH_GOAL))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-calls", type=int, default=2_000_000)
    parser.add_argument("--fresh-share", type=float, default=0.1,
                        help="share of searches with a new text (embedded, not cached)")
    parser.add_argument("--warmup-s", type=float, default=5.0)
    parser.add_argument("--catalog", default=str(ROOT / "data" / "products.csv"))
    parser.add_argument("--embedder", help="an embedder already running (default: start one)")
    args = parser.parse_args()
    started = time.time()
    with embedder_address(args.embedder) as address, tempfile.TemporaryDirectory() as tmp, \
            index_service(address, Path(args.catalog), Path(tmp) / "data") as index:
        fig = run(index.address, index.proc.pid, seconds=args.seconds, clients=args.clients,
                  max_calls=args.max_calls, fresh_share=args.fresh_share, warmup_s=args.warmup_s)
    publish("load", rows_of(fig), fig, args, started)


if __name__ == "__main__":
    main()
