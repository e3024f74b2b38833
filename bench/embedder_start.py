"""The embedder's start-up: seconds from launch to SERVING, and resident memory once SERVING, for
three starts of the default backend (OpenVINO, fp32), measured in one run, in rounds:

- first:  an empty model cache: loads the model with sentence-transformers, converts, caches;
- full:   the converted model cached but not its tokenizer (every start before the standalone
          tokenizer, and a model whose tokenizer cannot be kept): loads torch and
          sentence-transformers, reads the IR;
- cached: model and tokenizer cached (a restart, or the image's prepared cache): loads neither.

    .venv/bin/python -m bench.embedder_start [--rounds 3]

Goal (issue #12): start-up <= 15 s. The ratio of interest is cached vs full, same run.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench import services
from bench.measure import rss_mb
from bench.results import Row, publish

KINDS = ("first", "full", "cached")
START_GOAL_S = 15.0


def start_once(cache_dir: Path) -> dict:
    """One embedder start on `cache_dir`: seconds to SERVING, RSS (MiB), and how it loaded."""
    started = time.perf_counter()
    with services.embedder("--precision", "fp32", "--cache-dir", str(cache_dir)) as proc:
        seconds = time.perf_counter() - started
        rss = rss_mb(proc.proc.pid)
        torch_free = "torch not loaded" in proc.output()
    return {"seconds": seconds, "rss_mb": rss, "torch_free": torch_free}


def one_round(work: Path) -> dict[str, dict]:
    cache = Path(tempfile.mkdtemp(dir=work))
    first = start_once(cache)
    for facts in cache.glob("*/serving.json"):
        facts.unlink()  # the IR stays; the next start takes the full way (and writes it back)
    full = start_once(cache)
    return {"first": first, "full": full, "cached": start_once(cache)}


def rows_for(medians: dict[str, dict], rounds: list[dict]) -> list[Row]:
    rows = [Row(goal=f"embedder start to SERVING, {kind} start <= {START_GOAL_S:.0f} s",
                measured=f"{medians[kind]['seconds']:.2f} s (median of {len(rounds)}), "
                         f"RSS {medians[kind]['rss_mb']:.0f} MiB",
                ratio=f"{medians[kind]['seconds']:.2f} s", met=medians[kind]["seconds"] <= START_GOAL_S)
            for kind in KINDS]
    cached, full = medians["cached"], medians["full"]
    rows.append(Row(goal="start from the cache vs the full load (same run)",
                    measured=f"{cached['seconds']:.2f} s vs {full['seconds']:.2f} s; RSS "
                             f"{cached['rss_mb']:.0f} vs {full['rss_mb']:.0f} MiB",
                    ratio=f"{cached['seconds'] / full['seconds']:.2f}x time, "
                          f"{cached['rss_mb'] / full['rss_mb']:.2f}x memory",
                    met=None,
                    limits="" if all(r["cached"]["torch_free"] for r in rounds)
                    else "a cached start loaded torch: the tokenizer was not kept"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.embedder_start", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--name", default="embedder_start", help="results file name")
    args = parser.parse_args(argv)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-embedder-start-") as tmp:
        rounds = [one_round(Path(tmp)) for _ in range(args.rounds)]
    medians = {kind: {key: statistics.median(r[kind][key] for r in rounds)
                      for key in ("seconds", "rss_mb")} for kind in KINDS}
    publish(args.name, rows_for(medians, rounds), {"rounds": rounds, "medians": medians}, args, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
