"""What one live write costs on a large catalog, in-process (no gRPC, no model): the lexical model
refitted per batch (before) vs rows added with a fixed vocabulary (now), a whole 10-product
upsert on the snapshot, and one compaction.

    .venv/bin/python -m bench.write_cost [--size 100k] [--batch 10] [--repeats 5]

The catalog and vectors are synthetic (bench/synthetic.py); vectors are random unit rows.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.results import Row, publish
from bench.synthetic import DIMENSION, parse_size, size_name, write_catalog
from index_service import artifacts, vectors
from index_service.catalog import read_catalog
from index_service.compaction import write_compacted
from index_service.lexical import LexicalIndex
from index_service.snapshot import Snapshot


def _median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="100k")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    started, n = time.time(), parse_size(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        catalog, _ = read_catalog(write_catalog(Path(tmp) / "catalog.csv", n))
        texts = catalog.search_texts()
        rng = np.random.default_rng(0)
        vecs = vectors.normalize(rng.normal(size=(len(catalog), DIMENSION)).astype(np.float32))
        start = time.perf_counter()
        lexical = LexicalIndex().fit(texts)
        fit_s = time.perf_counter() - start
        snap = Snapshot(catalog=catalog, vectors=vectors.create("flat", DIMENSION).build(vecs),
                        lexical=lexical, manifest={"model_name": "synthetic", "dimension": DIMENSION,
                                                   "index_type": "flat", "index_params": {},
                                                   "format_version": artifacts.FORMAT_VERSION})
        new_texts = texts[:args.batch]
        add_s = _median_s(lambda: lexical.with_rows(new_texts), args.repeats)
        products = [{**catalog.product(i), "id": f"new-{i}"} for i in range(args.batch)]
        new_vecs = vecs[:args.batch]
        upsert_s = _median_s(lambda: snap.with_upserts(products, new_vecs, 1), args.repeats)
        grown = snap.with_upserts(products, new_vecs, 1)
        start = time.perf_counter()
        write_compacted(Path(tmp) / "data", grown)
        compact_s = time.perf_counter() - start
    label = size_name(n)
    figures = {"products": n, "batch": args.batch, "lexical_refit_s": round(fit_s, 3),
               "lexical_add_rows_s": round(add_s, 5), "upsert_batch_s": round(upsert_s, 4),
               "compaction_s": round(compact_s, 2)}
    publish("write_cost", [
        Row(goal=f"lexical cost of one {args.batch}-product upsert, {label} catalog: add rows "
                 "(fixed vocabulary) vs refit",
            measured=f"add {add_s * 1000:.1f} ms vs refit {fit_s:.2f} s",
            ratio=f"{fit_s / add_s:.0f}x cheaper"),
        Row(goal=f"one {args.batch}-product upsert on the snapshot, {label} catalog (no goal)",
            measured="copy-on-write: catalog columns, FAISS index copy, lexical rows",
            ratio=f"{upsert_s * 1000:.0f} ms"),
        Row(goal=f"one compaction, {label} catalog (background; no goal)",
            measured="live rows, new flat index, lexical refit, atomic write",
            ratio=f"{compact_s:.1f} s"),
    ], figures, args, started)


if __name__ == "__main__":
    main()
