"""Horizontal embedders: one index service over 1 vs 2 embedder processes, in one run.

    python -m bench.horizontal [--queries 400] [--concurrency 16]

Two real embedders (A, B) and the shared ikarus catalog (built once through A). Then the index
service is started twice on the same artifacts, with --query-cache-size 0 (every Search embeds):
`--embedder A` and `--embedder A,B` (round-robin by gRPC's own load balancing). Each time, 16
concurrent clients send unique queries; throughput (Search calls/s) and p50/p99 are compared. The
embedders' Prometheus counters (embedder_texts_total) show how the texts were spread.

With --threads-per-embedder N (default: also a run with 1) the pair is repeated with embedders
limited to N torch threads, so that two processes do not fight over the same 2 cores.
On a 2-core machine two embedders share the same cores: expect little or no gain; the point is to
show that the balancing works and what it costs.
"""
from __future__ import annotations

import argparse
import contextlib
import re
import tempfile
import time
import urllib.request
from pathlib import Path

from bench import services, synthetic
from bench.measure import closed_loop, fmt_ms
from bench.results import Row, publish
from tests.procs import IKARUS_CSV, free_port


def texts_embedded(metrics_port: int) -> float:
    """embedder_texts_total from an embedder's /metrics (0 when unreadable)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            body = r.read().decode()
    except OSError:
        return 0.0
    match = re.search(r"^embedder_texts_total\s+([0-9.e+]+)$", body, re.M)
    return float(match.group(1)) if match else 0.0


@contextlib.contextmanager
def embedders(count: int, threads: int):
    """`count` embedders; yields [(address, metrics_port)]."""
    with contextlib.ExitStack() as stack:
        out = []
        for _ in range(count):
            mport = free_port()
            extra = ["--metrics-port", str(mport)] + (["--torch-threads", str(threads)] if threads else [])
            proc = stack.enter_context(services.embedder(*extra))
            out.append((proc.address, mport))
        yield out


def run_config(targets: list[tuple[str, int]], catalog: Path, data_dir: Path, queries: list[str],
               args) -> dict:
    spec = ",".join(addr for addr, _ in targets)
    before = [texts_embedded(m) for _, m in targets]
    with services.index_service(spec, catalog, data_dir, "--query-cache-size", "0",
                                timeout=args.build_timeout) as idx, \
            services.Stubs(idx.address) as stubs:
        for q in synthetic.query_texts(8, seed=99):
            stubs.search_text(q)
        load = closed_loop(lambda q: stubs.search_text(q), queries, concurrency=args.concurrency,
                           max_seconds=args.phase_seconds)
    after = [texts_embedded(m) for _, m in targets]
    return {"embedders": len(targets), "load": load.summary(),
            "texts_per_embedder": [round(a - b) for a, b in zip(after, before)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.horizontal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, default=IKARUS_CSV)
    parser.add_argument("--queries", type=int, default=400, help="Search calls per configuration")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--phase-seconds", type=float, default=40.0)
    parser.add_argument("--threads", default="0,1",
                        help="torch threads per embedder, one pair of runs per value (0 = torch default)")
    parser.add_argument("--build-timeout", type=float, default=600.0)
    parser.add_argument("--name", default="horizontal")
    args = parser.parse_args(argv)
    started = time.time()
    pool = synthetic.query_texts(4 * args.queries * 2, seed=7)
    runs, rows = [], []
    with tempfile.TemporaryDirectory(prefix="bench-horizontal-") as tmp:
        data_dir = Path(tmp) / "data"
        for i, threads in enumerate(int(t) for t in args.threads.split(",") if t.strip()):
            with embedders(2, threads) as pair:
                one = run_config(pair[:1], args.catalog, data_dir,
                                 pool[(2 * i) * args.queries:(2 * i + 1) * args.queries], args)
                two = run_config(pair, args.catalog, data_dir,
                                 pool[(2 * i + 1) * args.queries:(2 * i + 2) * args.queries], args)
            runs.append({"torch_threads": threads or "default", "one": one, "two": two})
            t1, t2 = one["load"]["throughput_per_s"], two["load"]["throughput_per_s"]
            ratio = t2 / t1 if t1 else 0.0
            label = "torch default threads" if not threads else f"{threads} torch thread(s) each"
            rows.append(Row(
                goal=f"2 embedders vs 1 ({args.concurrency} clients, unique queries, {label})",
                measured=(f"1: {t1:.1f} searches/s p50 {fmt_ms(one['load']['p50_ms'])}; 2: {t2:.1f}/s "
                          f"p50 {fmt_ms(two['load']['p50_ms'])}; texts per embedder "
                          f"{two['texts_per_embedder']}"),
                ratio=f"{ratio:.2f}x", met=None,
                limits=f"{_cores()} cores shared by both embedders, the index service and the clients"))
            print(f"[horizontal] {label}: {rows[-1].measured} -> {rows[-1].ratio}", flush=True)
    publish(args.name, rows, {"runs": runs}, args, started)
    return 0


def _cores() -> int:
    import os
    return os.cpu_count() or 1


if __name__ == "__main__":
    raise SystemExit(main())
