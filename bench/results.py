"""One result format for every bench script, the machine it ran on, and the summary table.

Each script writes bench/results/<name>.json:

    {"bench": name, "started": ISO time, "seconds": wall time, "args": {...},
     "rows": [{"goal": ..., "measured": ..., "ratio": ..., "met": true|false|null, "limits": ...}],
     "details": {... everything measured, for whoever wants more than the table ...}}

`met` is None where a row reports a figure without a goal. run_all.py reads every file back and
renders one table (markdown) with the machine's description.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# BENCH_RESULTS_DIR moves them (the smoke tests write into a temporary directory).
RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS_DIR") or Path(__file__).resolve().parent / "results")


@dataclass
class Row:
    goal: str  # what we aim for, in words: "Search overhead p50 <= 2 ms (ikarus, 1 client)"
    measured: str  # the figures behind the ratio: "search 9.1 ms vs embed 8.0 ms"
    ratio: str = ""  # "1.1 ms" / "0.93x": the number the goal is about
    met: bool | None = None
    limits: str = ""  # when not met (or worth saying): what limits it


def write_result(name: str, rows: list[Row], details: dict, *, args: dict | None = None,
                 started: float | None = None, results_dir: Path = RESULTS_DIR) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    payload = {
        "bench": name,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started or now)),
        "seconds": round(now - started, 1) if started else None,
        "args": args or {},
        "rows": [asdict(r) for r in rows],
        "details": details,
    }
    path = results_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_plain) + "\n")
    os.replace(tmp, path)
    return path


def failure_row(what: str, exc: BaseException) -> Row:
    """A row saying that one part of a bench failed (the rest still reports)."""
    text = str(exc).strip().splitlines()
    return Row(goal=what, measured=f"failed: {type(exc).__name__}", met=False,
               limits=(text[-1] if text else "")[:300])


def publish(name: str, rows: list[Row], details: dict, args, started: float, *,
            echo: bool = True) -> Path:
    """write_result (args: an argparse Namespace) and print each row on the console."""
    path = write_result(name, rows, details, args={k: str(v) for k, v in vars(args).items()},
                        started=started)
    if not echo:
        return path
    for row in rows:
        met = {True: "met", False: "NOT met", None: "no goal"}[row.met]
        print(f"  {row.goal}: {row.measured} -> {row.ratio} ({met})")
    print(f"[{name}] wrote {path}", flush=True)
    return path


def _plain(value):
    """numpy scalars and the like -> JSON."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_results(results_dir: Path = RESULTS_DIR) -> dict[str, dict]:
    """{file stem: parsed JSON} of every results file (unreadable ones left out)."""
    out = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return out


def machine() -> dict:
    """Cores, memory and CPU model of this machine (from /proc where there is one)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil
        ram_gib = psutil.virtual_memory().total / 2 ** 30
    except ImportError:  # pragma: no cover - psutil is pinned in requirements.txt
        ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return {"cores": os.cpu_count(), "ram_gib": round(ram_gib, 1), "cpu": model,
            "python": platform.python_version(), "system": platform.platform(terse=True)}


def machine_line(info: dict | None = None) -> str:
    info = info or machine()
    return (f"{info['cores']} cores ({info['cpu']}), {info['ram_gib']:g} GiB RAM, "
            f"Python {info['python']}, {info['system']}")


def _cell(text) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def _met(value) -> str:
    return {True: "yes", False: "NO", None: "-"}[value]


def markdown_table(results: list[dict]) -> str:
    lines = ["| bench | goal | measured | ratio | met? | what limits it |",
             "|---|---|---|---|---|---|"]
    for result in results:
        for row in result.get("rows", []):
            lines.append("| " + " | ".join(_cell(c) for c in (
                result["bench"], row["goal"], row["measured"], row["ratio"], _met(row["met"]),
                row["limits"])) + " |")
    return "\n".join(lines)


def text_table(results: list[dict], width: int = 60) -> str:
    """The same table for a terminal: fixed columns, long cells cut with an ellipsis."""
    header = ("bench", "goal", "measured", "ratio", "met?", "what limits it")
    rows = [header]
    for result in results:
        for row in result.get("rows", []):
            rows.append((result["bench"], row["goal"], row["measured"], row["ratio"],
                         _met(row["met"]), row["limits"]))

    def cut(text: str) -> str:
        text = str(text or "")
        return text if len(text) <= width else text[:width - 1] + "…"

    cells = [[cut(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for n, r in enumerate(cells):
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
