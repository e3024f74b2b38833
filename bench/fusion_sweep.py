"""Does tuned hybrid search earn its place on every catalog? For each catalog: serve it (FAISS
store), run `recsys evaluate --sweep-fusion` (RRF and weighted fusion at alpha 0.0 to 1.0, chosen
on the products at even listing positions), restart the service with the flags it printed, sweep
again, and compare hybrid as now served with the best single mode on the report half (odd
positions), by precision@5.

    python -m bench.fusion_sweep [--catalogs ikarus,products,product_lines] [--embedder ADDR]
                                 [--out DIR]

Catalogs: ikarus (the app's, ../shared/data, skipped when absent), products (data/products.csv),
product_lines (data/product_lines.csv: bare product-line titles, mapped with --columns). Each
catalog's evaluate files (metrics.json, report.md, fusion_sweep.json, fusion_sweep.png, ...) go
into --out/<catalog>/ (default var/fusion_sweep).

The goal row holds on one split, and a split of 100-150 queries can tip a difference of a few
top-5 slots either way. So each catalog also gets a row of context: the same searches scored
again on 200 random halvings (seeded; bench/fusion_halvings.py), with how often the sweep's
choice reached the best single mode on the report half, the mean and worst gap, and the
settings it chose most.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench import services
from bench.fusion_halvings import halvings
from bench.results import Row, failure_row, publish
from client import RecsysClient
from client.eval_report import write_report
from client.evaluate import evaluate
from client.types import MODES
from tests.procs import IKARUS_CSV, ROOT

LINES_COLUMNS = ("id=sku,title=name,brand=maker,description=text,price=cost,"
                 "categories=category_path,color=finish")
# name -> (catalog, --columns)
CATALOGS = {"ikarus": (IKARUS_CSV, ""), "products": (ROOT / "data" / "products.csv", ""),
            "product_lines": (ROOT / "data" / "product_lines.csv", LINES_COLUMNS)}
DEFAULT_OUT = ROOT / "var" / "fusion_sweep"


def sweep_once(embedder: str, catalog: Path, data_dir: Path, flags: list[str], out: Path):
    """Serve the catalog with `flags`, run the sweep, write the files: (report, stats)."""
    with services.index_service(embedder, catalog, data_dir, *flags) as proc, \
            RecsysClient(index=proc.address, timeout=60) as client:
        report = evaluate(client, (1, 5, 10), MODES, progress=False, sweep_fusion=True)
        stats = client.stats()
    write_report(report, out)
    return report, stats


def measure(name: str, embedder: str, work: Path, out: Path) -> dict:
    catalog, columns = CATALOGS[name]
    flags = ["--columns", columns] if columns else []
    data_dir = work / name
    first, _ = sweep_once(embedder, catalog, data_dir, flags, out / name)
    tuned = first.sweep.flags.split()
    second, stats = sweep_once(embedder, catalog, data_dir, flags + tuned, out / f"{name}-tuned")
    return {"catalog": str(catalog), "columns": columns, "products": first.products,
            "flags": first.sweep.flags, "best": first.sweep.best, "served": second.sweep.served,
            "stats": {"hybrid_fusion": stats.hybrid_fusion, "hybrid_alpha": stats.hybrid_alpha},
            "report": first.sweep.headline(), "served_report": second.sweep.headline(),
            "tune": first.sweep.tune, "report_sweep": first.sweep.report,
            "halvings": halvings(first.sweep)}


def row(name: str, result: dict) -> Row:
    head, served = result["report"], result["served_report"]
    single = max(head["semantic"], head["lexical"])
    gap = served["hybrid_served"] - single
    return Row(goal=f"{name}: hybrid with the printed flags >= best single mode (precision@5, "
                    f"report half)",
               measured=(f"{result['flags']}: {served['hybrid_served']:.4f}; semantic "
                         f"{head['semantic']:.4f}, lexical {head['lexical']:.4f}, RRF "
                         f"{head['hybrid_rrf']:.4f}"),
               ratio=f"{gap:+.4f}", met=gap >= 0,
               limits="" if gap >= 0 else "chosen on the tuning half, where it led; the halves "
                                          "differ by a few hits")


def halvings_row(name: str, result: dict) -> Row:
    spread = result["halvings"]
    chosen = ", ".join(f"{setting} {count}" for setting, count in spread["chosen"].items())
    return Row(goal=f"{name}: the same goal on {spread['rounds']} random halvings of the same "
                    f"searches (context: how often one split can meet it)",
               measured=(f"reached in {spread['reached']:.1%}; gap mean {spread['mean_gap']:+.4f}, "
                         f"worst {spread['worst_gap']:+.4f}; chosen most: {chosen}"),
               ratio=f"{spread['reached']:.1%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fusion_sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogs", default=",".join(CATALOGS))
    parser.add_argument("--embedder", default="")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--name", default="fusion_sweep")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.catalogs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CATALOGS]
    if unknown:
        parser.error(f"unknown catalogs {unknown}: choose from {', '.join(CATALOGS)}")
    started, rows, details = time.time(), [], {}
    with tempfile.TemporaryDirectory(prefix="bench-fusion-") as tmp, \
            services.embedder_address(args.embedder) as embedder:
        for name in names:
            if not CATALOGS[name][0].exists():
                rows.append(Row(goal=f"{name}: skipped", measured=f"{CATALOGS[name][0]} is absent"))
                continue
            try:
                details[name] = measure(name, embedder, Path(tmp), args.out)
                rows += [row(name, details[name]), halvings_row(name, details[name])]
            except Exception as exc:  # one catalog failing still reports the others
                rows.append(failure_row(f"{name}: fusion sweep", exc))
    publish(args.name, rows, details, args, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
