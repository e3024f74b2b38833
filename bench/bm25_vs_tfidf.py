"""How far Milvus's BM25 is from our TF-IDF: the same catalog and vectors served by the FAISS store
(MODE_LEXICAL: TF-IDF unigrams+bigrams, cosine) and by a Milvus store with BM25 (milvus-lite 3.x,
as Milvus >= 2.5 has it), evaluated in one run with `client evaluate`'s metrics.

    python -m bench.bm25_vs_tfidf [--catalog CSV]     (default: the shared ikarus catalog)

Reports precision@5 and MRR@10 of lexical and hybrid search on each store, how much the two
lexical top-10s overlap (every product title as a query), and the score scales (TF-IDF cosine is
in [0, 1]; BM25 is unbounded, so a min_score threshold does not carry over between stores).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import services
from bench.results import Row, publish
from client import RecsysClient
from client.evaluate import evaluate
from tests.procs import IKARUS_CSV, ServiceProcess, free_port

MODES = ("semantic", "lexical", "hybrid")


def start(embedder: str, catalog: Path, *flags: str) -> ServiceProcess:
    port = free_port()
    proc = ServiceProcess("index_service", ["--port", str(port), "--embedder", embedder,
                                            "--catalog", str(catalog), *flags], port)
    return proc.wait_serving(1800)


def lexical_lists(address: str, products: list) -> tuple[dict[str, list[str]], list[float]]:
    """Each product's title as a query: {product id: lexical top-10 ids}, and the top scores."""
    lists, top_scores = {}, []
    with RecsysClient(index=address, timeout=60) as client:
        for product in products:
            hits = client.search(product.title, k=10, mode="lexical").hits
            lists[product.id] = [h.product.id for h in hits]
            top_scores += [h.score for h in hits[:1]]
    return lists, top_scores


def measure(address: str) -> dict:
    with RecsysClient(index=address, timeout=60) as client:
        report = evaluate(client, (1, 5, 10), MODES, progress=False)
        products = list(client.list_products(page_size=1000))
    lists, scores = lexical_lists(address, products)
    return {"metrics": {m: report.rounded(m) for m in MODES}, "lists": lists,
            "top_score": {"min": float(np.min(scores)), "median": float(np.median(scores)),
                          "max": float(np.max(scores))}}


def rows(faiss: dict, bm25: dict) -> list[Row]:
    out = []
    for mode in ("lexical", "hybrid"):
        for key in ("precision@5", "mrr@10"):
            a, b = faiss["metrics"][mode].get(key), bm25["metrics"][mode].get(key)
            if a is None or b is None:
                continue
            out.append(Row(goal=f"{mode} {key}: BM25 (Milvus) vs TF-IDF (FAISS store)",
                           measured=f"TF-IDF {a:.3f}; BM25 {b:.3f}", ratio=f"{b - a:+.3f}", met=None))
    overlap = np.mean([len(set(faiss["lists"][pid]) & set(bm25["lists"][pid])) / 10
                       for pid in faiss["lists"]])
    out.append(Row(goal="lexical top-10 overlap, every title as a query",
                   measured=f"{overlap:.2f} of the 10 in common on average", ratio=f"{overlap:.2f}",
                   met=None))
    out.append(Row(goal="lexical score of the top hit (min / median / max)",
                   measured=(f"TF-IDF {faiss['top_score']['min']:.2f} / "
                             f"{faiss['top_score']['median']:.2f} / {faiss['top_score']['max']:.2f}; "
                             f"BM25 {bm25['top_score']['min']:.2f} / "
                             f"{bm25['top_score']['median']:.2f} / {bm25['top_score']['max']:.2f}"),
                   met=None, limits="different scales: a min_score for one store means nothing to the other"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bm25_vs_tfidf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, default=IKARUS_CSV)
    parser.add_argument("--embedder", default="")
    parser.add_argument("--name", default="bm25_vs_tfidf")
    args = parser.parse_args(argv)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-bm25-") as tmp, \
            services.embedder_address(args.embedder) as embedder:
        work = Path(tmp)
        proc = start(embedder, args.catalog, "--data-dir", str(work / "faiss"))
        try:
            faiss = measure(proc.address)
        finally:
            proc.terminate()
        build = work / "faiss" / (work / "faiss" / "CURRENT").read_text().strip()
        proc = start(embedder, args.catalog, "--store", "milvus", "--milvus-uri",
                     str(work / "lite.db"), "--milvus-index-type", "flat", "--embeddings",
                     str(build / "embeddings.npy"))
        try:
            bm25 = measure(proc.address)
        finally:
            proc.terminate()
    details = {"tfidf": {k: v for k, v in faiss.items() if k != "lists"},
               "bm25": {k: v for k, v in bm25.items() if k != "lists"},
               "catalog": str(args.catalog)}
    publish(args.name, rows(faiss, bm25), details, args, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
