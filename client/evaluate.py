"""`python -m client evaluate`: retrieval quality of each search mode, end to end through gRPC.

    python -m client evaluate --index HOST:PORT [--k 1,5,10] [--modes semantic,lexical,hybrid]
                              [--out DIR] [--workers N] [--sweep-fusion]

Reads the catalog from the index service (ListProducts, page by page), queries every product's
title in every mode (Search, k = query_depth(ks) hits, `--workers` calls in flight, each with the
client's deadline), computes client/eval_metrics.py's figures and writes metrics.json, report.md
and metrics.png into --out (client/eval_report.py). --sweep-fusion also queries every title in
every setting of client/fusion_sweep.py (RRF and weighted fusion at alpha 0.0 to 1.0), chooses the
best on the products at even listing positions, reports it on the odd ones, and writes
fusion_sweep.json and fusion_sweep.png (client/sweep_report.py) and prints the flags to use. A
progress bar runs on stderr when it is a terminal; the metrics table
(or metrics.json with --json) is printed at the end. It needs tqdm and matplotlib, which the
recsys-client distribution installs only with its `eval` extra; without them `recsys evaluate`
says in one line what to install (the other commands never import them). From Python:

    with RecsysClient(index="localhost:50052") as client:
        report = evaluate(client, ks=(1, 5, 10), modes=("semantic", "lexical", "hybrid"),
                          sweep_fusion=True)
    write_report(report, "var/eval")          # report.sweep.flags: the index service's flags
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Sequence

from .errors import RecsysError
from .eval_metrics import evaluate_mode, parse_ks, query_depth
from .eval_report import (EXAMPLE_HITS, EXAMPLE_QUERIES, EvalReport, metrics_table,
                          require_eval_extra, write_report)
from .fusion_sweep import score_sweep, served_name, sweep_settings
from .recsys_client import RecsysClient
from .sweep_report import sweep_summary
from .types import MODES, HybridParams

DEFAULT_KS = (1, 5, 10)
DEFAULT_OUT = Path("var/eval")
DEFAULT_WORKERS = 4
PAGE_SIZE = 1000


Query = tuple[str, str, int, "HybridParams | None"]  # query, mode, k, hybrid params


def _search_all(client: RecsysClient, queries: Sequence[Query], workers: int,
                progress: bool) -> list[list]:
    """Hits of each (query, mode, k, hybrid), in order; the first failure stops the run and is
    raised."""
    from tqdm import tqdm  # the eval extra: the rest of the CLI works without it

    def one(query: str, mode: str, k: int, hybrid: HybridParams | None) -> list:
        return list(client.search(query, k=k, mode=mode, hybrid=hybrid).hits)

    with tqdm(total=len(queries), desc="evaluate", unit="query", disable=not progress,
              file=sys.stderr) as bar:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="evaluate")
        try:
            futures = [pool.submit(one, *q) for q in queries]
            for future in futures:
                future.add_done_callback(lambda _: bar.update())
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:  # after a failure or Ctrl-C: drop what has not started, let the rest finish
            pool.shutdown(wait=True, cancel_futures=True)
        failed = next((f for f in futures if not f.cancelled() and f.exception() is not None), None)
        if failed is not None:
            raise failed.exception()
        return [future.result() for future in futures]


def evaluate(client: RecsysClient, ks: Sequence[int] = DEFAULT_KS, modes: Sequence[str] = MODES,
             *, workers: int = DEFAULT_WORKERS, progress: bool = True,
             sweep_fusion: bool = False) -> EvalReport:
    """Every title in every mode (and, with sweep_fusion, every sweep setting): the report."""
    require_eval_extra()
    stats = client.stats()
    products = list(client.list_products(page_size=PAGE_SIZE))
    if not products:
        raise RecsysError(f"the catalog served at {client.index_target} is empty: nothing to evaluate")
    depth = query_depth(ks)
    if stats.max_k and depth > stats.max_k:
        raise RecsysError(f"--k {max(ks)} needs {depth} hits per query, above the index service's "
                          f"max_k {stats.max_k}: use smaller K")
    if sweep_fusion and not stats.hybrid_fusion:  # proto3 would drop fusion and alpha unread
        raise RecsysError(f"the index service at {client.index_target} does not report "
                          "Stats.hybrid_fusion: it predates weighted fusion, so every setting of "
                          "--sweep-fusion would run its RRF; upgrade the service")
    settings = {mode: (mode, None) for mode in modes}
    if sweep_fusion:  # the modes' searches count for the sweep's settings of the same name
        settings.update(sweep_settings())
    title_queries = [(p.title, mode, depth, hybrid) for mode, hybrid in settings.values()
                     for p in products]
    example_queries = [(q, mode, EXAMPLE_HITS, None) for q in EXAMPLE_QUERIES for mode in modes]
    results = _search_all(client, title_queries + example_queries, workers, progress)

    categories, per_setting = {p.id: p.category for p in products}, len(products)
    hits = {name: {p.id: [h.product.id for h in results[i * per_setting + j]]
                   for j, p in enumerate(products)} for i, name in enumerate(settings)}
    metrics = {mode: evaluate_mode(categories, hits[mode], ks) for mode in modes}
    sweep = score_sweep(categories, [p.id for p in products], hits,
                        served_name(stats.hybrid_fusion, stats.hybrid_alpha)) if sweep_fusion else None
    example_results = iter(results[len(title_queries):])
    examples = {q: {mode: [h.product.title for h in next(example_results)] for mode in modes}
                for q in EXAMPLE_QUERIES}
    first = next(iter(metrics.values()))
    return EvalReport(catalog=stats.catalog_sha256, model=stats.model_name,
                      products=first.products, category_products=first.category_products,
                      ks=tuple(ks), modes={m: r.metrics for m, r in metrics.items()},
                      examples=examples, sweep=sweep)


def _ks(text: str) -> tuple[int, ...]:
    try:
        return parse_ks(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _modes(text: str) -> tuple[str, ...]:
    modes = tuple(dict.fromkeys(m.strip().lower() for m in text.split(",") if m.strip()))
    unknown = [m for m in modes if m not in MODES]
    if not modes or unknown:
        raise argparse.ArgumentTypeError(f"modes are a comma-separated list of {', '.join(MODES)}; "
                                         f"got {text!r}")
    return modes


def _workers(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 32:
        raise argparse.ArgumentTypeError(f"--workers must be a whole number from 1 to 32, not {text!r}")
    return int(text)


def run(args: argparse.Namespace, client: RecsysClient) -> None:
    # The bar redraws in place: on a terminal only, not into a log file or a CI's captured stderr.
    report = evaluate(client, args.k, args.modes, workers=args.workers,
                      progress=sys.stderr.isatty(),
                      sweep_fusion=args.sweep_fusion)
    paths = write_report(report, args.out)
    if args.json:  # with --sweep-fusion: fusion_sweep.json, else metrics.json
        print((report.sweep or report).to_json(), end="")
        return
    print(f"{report.products} products ({report.category_products} with a category peer)\n")
    print(metrics_table(report))
    if report.sweep is not None:
        print(sweep_summary(report.sweep))
    print("wrote " + ", ".join(str(p) for p in paths.values()))


def register(add) -> None:
    parser = add("evaluate", help="measure search quality of each mode over the served catalog",
                 description="Query every product's title in each mode and report self-retrieval@K, "
                             "category precision@K and recall@K, and MRR@10 (metrics.json, "
                             "report.md, metrics.png).", run=run)
    parser.add_argument("--k", type=_ks, default=DEFAULT_KS, metavar="K,K,...",
                        help="cut-offs, comma-separated (default 1,5,10)")
    parser.add_argument("--modes", type=_modes, default=MODES, metavar="MODE,...",
                        help=f"modes to evaluate (default {','.join(MODES)})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help=f"where to write the report files (default {DEFAULT_OUT})")
    parser.add_argument("--workers", type=_workers, default=DEFAULT_WORKERS, metavar="N",
                        help=f"searches in flight at once (default {DEFAULT_WORKERS})")
    parser.add_argument("--sweep-fusion", action="store_true",
                        help="also measure hybrid search with RRF and with weighted fusion at alpha "
                             "0.0 to 1.0, choose on the products at even listing positions, report "
                             "on the odd ones, write fusion_sweep.json and fusion_sweep.png, and "
                             "print the index service flags to use (--hybrid-fusion, --hybrid-alpha)")
