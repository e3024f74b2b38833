"""What one live write costs on a large catalog, in-process (no gRPC, no model): the lexical model
refitted per batch (before) vs rows added with a fixed vocabulary (now); the vectors of a
10-product upsert in an exact layer on top of the built index (now) vs a copy of the whole index
(before), and what a full layer costs a search; a whole 10-product upsert on the snapshot; one
compaction.

    .venv/bin/python -m bench.write_cost [--size 100k] [--batch 10] [--repeats 5]

The catalog and vectors are synthetic (bench/synthetic.py); vectors are random unit rows.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the index service does, before FAISS loads

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np

from bench.results import Row, publish
from bench.synthetic import DIMENSION, parse_size, size_name, write_catalog
from index_service import artifacts, vectors
from index_service.catalog_reader import read_catalog
from index_service.compaction import write_compacted
from index_service.lexical import LexicalIndex
from index_service.snapshot import Snapshot
from index_service.vectors.base import set_search_threads
from index_service.vectors.layered import MAX_LAYER_ROWS


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
    parser.add_argument("--name", default="write_cost", help="results file name")
    args = parser.parse_args()
    started, n = time.time(), parse_size(args.size)
    set_search_threads(1)  # the index service's default --faiss-threads
    with tempfile.TemporaryDirectory() as tmp:
        raw = measure(n, args.batch, args.repeats, Path(tmp))
    publish(args.name, rows(raw, size_name(n)), rounded(raw), args, started)


def measure(n: int, batch: int, repeats: int, tmp: Path) -> dict:
    """Seconds of each write step on an n-product synthetic catalog (flat index), unrounded."""
    catalog, _ = read_catalog(write_catalog(tmp / "catalog.csv", n))
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
    new_texts = texts[:batch]
    add_s = _median_s(lambda: lexical.with_rows(new_texts), repeats)
    products = [{**catalog.product(i), "id": f"new-{i}"} for i in range(batch)]
    new_vecs = vecs[:batch]
    upsert_s = _median_s(lambda: snap.with_upserts(products, new_vecs, 1), repeats)
    layer_s = _median_s(lambda: snap.vectors.with_added(new_vecs), repeats)
    copy_s = _median_s(lambda: snap.vectors.with_added_copy(new_vecs), repeats)
    full_layer = snap.vectors.with_added(vecs[:MAX_LAYER_ROWS])
    query = vecs[n // 2:n // 2 + 1]
    search_s = _median_s(lambda: snap.vectors.search(query, 10), 50)
    layered_search_s = _median_s(lambda: full_layer.search(query, 10), 50)
    grown = snap.with_upserts(products, new_vecs, 1)
    start = time.perf_counter()
    write_compacted(tmp / "data", grown)
    compact_s = time.perf_counter() - start
    return {"products": n, "batch": batch, "lexical_refit_s": fit_s, "lexical_add_rows_s": add_s,
            "upsert_batch_s": upsert_s, "vectors_layer_s": layer_s, "vectors_copy_s": copy_s,
            "search_s": search_s, "search_full_layer_s": layered_search_s, "compaction_s": compact_s}


DIGITS = {"lexical_refit_s": 3, "lexical_add_rows_s": 5, "upsert_batch_s": 4, "vectors_layer_s": 5,
          "vectors_copy_s": 4, "search_s": 5, "search_full_layer_s": 5, "compaction_s": 2}


def rounded(raw: dict) -> dict:
    """The figures as the JSON results keep them."""
    return {key: round(value, DIGITS[key]) if key in DIGITS else value for key, value in raw.items()}


def rows(f: dict, label: str) -> list[Row]:
    batch = f["batch"]
    add_s, fit_s = f["lexical_add_rows_s"], f["lexical_refit_s"]
    layer_s, copy_s = f["vectors_layer_s"], f["vectors_copy_s"]
    search_s, layered_search_s = f["search_s"], f["search_full_layer_s"]
    return [
        Row(goal=f"lexical cost of one {batch}-product upsert, {label} catalog: add rows "
                 "(fixed vocabulary) vs refit",
            measured=f"add {add_s * 1000:.1f} ms vs refit {fit_s:.2f} s",
            ratio=f"{fit_s / add_s:.0f}x cheaper"),
        Row(goal=f"vectors of one {batch}-product upsert, {label} catalog (flat): exact layer on "
                 "the built index vs a copy of the index",
            measured=f"layer {layer_s * 1000:.2f} ms vs copy {copy_s * 1000:.0f} ms",
            ratio=f"{copy_s / layer_s:.0f}x cheaper"),
        Row(goal=f"one search (k 10, flat, {label}) with a full layer ({MAX_LAYER_ROWS} rows) vs none "
                 "(no goal)",
            measured=f"{layered_search_s * 1000:.2f} ms vs {search_s * 1000:.2f} ms",
            ratio=f"+{(layered_search_s - search_s) * 1000:.2f} ms"),
        Row(goal=f"one {batch}-product upsert on the snapshot, {label} catalog (no goal)",
            measured="catalog columns (copy-on-write), vectors (layer), lexical rows",
            ratio=f"{f['upsert_batch_s'] * 1000:.0f} ms"),
        Row(goal=f"one compaction, {label} catalog (background; no goal)",
            measured="live rows, new flat index, lexical refit, atomic write",
            ratio=f"{f['compaction_s']:.1f} s"),
    ]


if __name__ == "__main__":
    main()
