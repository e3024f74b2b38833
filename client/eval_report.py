"""The files of `python -m client evaluate`: metrics.json, report.md and metrics.png (and, with
--sweep-fusion, client/sweep_report.py's fusion_sweep.json, fusion_sweep.png and report.md's
"Fusion sweep" paragraph).

    report = EvalReport(catalog=sha256, model=name, products=N, category_products=M, ks=(1, 5, 10),
                        modes={"semantic": {"precision@5": 0.52, ...}, ...},
                        examples={"query": {"semantic": ["title", ...], ...}, ...})
    write_report(report, out_dir)   # the three files; byte-identical for an identical report

Deterministic: figures are rounded to DECIMALS places once (in EvalReport.rounded), JSON keys are
sorted, the markdown is generated in a fixed order, and the PNG is drawn by the Agg canvas without
pyplot (no global state) and without the "Software" metadata chunk.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from .errors import RecsysError
from .eval_metrics import metric_keys
from .fusion_sweep import FusionSweep
from .sweep_report import sweep_markdown, write_sweep

DECIMALS = 4
EXAMPLE_QUERIES = ("cozy wooden chair for study table", "small folding computer desk",
                   "blue metal cafe table", "upholstered lounge arm chair")
EXAMPLE_HITS = 5
FILES = ("metrics.json", "report.md", "metrics.png")
EVAL_EXTRA_HINT = ("recsys evaluate needs the eval extra: pip install 'recsys-client[eval]' "
                   "(from a checkout: pip install './client[eval]')")


def require_eval_extra() -> None:
    """RecsysError saying what to install unless the eval extra's packages import (tqdm for the
    progress bar, matplotlib for metrics.png): recsys-client installs them only with [eval]."""
    try:
        import matplotlib  # noqa: F401
        import tqdm  # noqa: F401
    except ImportError as exc:
        raise RecsysError(f"{EVAL_EXTRA_HINT}; {exc.name or 'a package'} is missing") from None


@dataclass(frozen=True)
class EvalReport:
    catalog: str  # what was evaluated: the catalog's sha256 as the index service reports it
    model: str
    products: int
    # Products with at least one other product in their short category.
    category_products: int
    ks: tuple[int, ...]
    # mode -> metric key -> mean (None when it applies to no product); modes in report order.
    modes: Mapping[str, Mapping[str, float | None]]
    # query -> mode -> the top EXAMPLE_HITS titles.
    examples: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)
    # `evaluate --sweep-fusion`: the fusion sweep's figures.
    sweep: FusionSweep | None = None

    def rounded(self, mode: str) -> dict[str, float | None]:
        values = self.modes[mode]
        return {key: None if values[key] is None else round(values[key], DECIMALS)
                for key in metric_keys(self.ks)}

    def to_json(self) -> str:
        body = {"catalog": self.catalog, "model": self.model, "products": self.products,
                "category_products": self.category_products, "k": list(self.ks),
                "modes": {mode: self.rounded(mode) for mode in self.modes}}
        return json.dumps(body, indent=2, sort_keys=True) + "\n"


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.{DECIMALS}f}"


def _text(title: str) -> str:
    return " ".join(title.split()).replace("|", "\\|")


def metrics_table(report: EvalReport) -> str:
    """The modes x metrics markdown table (also what the README shows)."""
    keys = metric_keys(report.ks)
    lines = ["| mode | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for mode in report.modes:
        values = report.rounded(mode)
        lines.append(f"| {mode} | " + " | ".join(_cell(values[k]) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def examples_markdown(report: EvalReport) -> str:
    modes = list(report.modes)
    parts = []
    for query, by_mode in report.examples.items():
        lines = [f"### \"{query}\"", "", "| # | " + " | ".join(modes) + " |",
                 "|---|" + "---|" * len(modes)]
        for i in range(EXAMPLE_HITS):
            cells = [_text(by_mode[m][i]) if i < len(by_mode.get(m, ())) else "" for m in modes]
            lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def report_markdown(report: EvalReport) -> str:
    head = (f"# Retrieval evaluation\n\n"
            f"Catalog sha256 `{report.catalog}`, model `{report.model}`: {report.products} products, "
            f"{report.category_products} of them share their short category with another product.\n\n"
            "Every product's title is a query, in every mode. self_retrieval@K: the product is among "
            "the first K hits. Without the product itself, the first K hits: precision@K = hits of "
            "its short category / K, recall@K = hits of its short category / all other products of "
            "that category; mrr@10 = 1 / rank of the first hit of its category in the first 10 "
            "(0 if none). Precision, recall and MRR leave out products alone in their category.\n\n"
            "## Metrics (means over the catalog)\n\n")
    text = head + metrics_table(report)
    if report.examples:
        text += f"\n## Example queries: top {EXAMPLE_HITS} per mode\n\n" + examples_markdown(report)
    if report.sweep is not None:
        text += "\n" + sweep_markdown(report.sweep)
    return text


def write_plot(report: EvalReport, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4), dpi=100)
    FigureCanvasAgg(figure)
    for i, metric in enumerate(("precision", "recall")):
        axes = figure.add_subplot(1, 2, i + 1)
        for mode in report.modes:
            values = report.rounded(mode)
            points = [(k, values[f"{metric}@{k}"]) for k in report.ks
                      if values[f"{metric}@{k}"] is not None]
            axes.plot([k for k, _ in points], [v for _, v in points], marker="o", label=mode)
        axes.set_title(f"category {metric}@K")
        axes.set_xlabel("K")
        axes.set_xticks(list(report.ks))
        axes.set_ylim(0, 1)
        axes.grid(True, alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})


def write_report(report: EvalReport, out_dir: str | Path) -> dict[str, Path]:
    """Writes the three files (five with a sweep) into out_dir (created if missing); returns
    name -> path."""
    require_eval_extra()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in FILES}
    paths["metrics.json"].write_text(report.to_json(), encoding="utf-8")
    paths["report.md"].write_text(report_markdown(report), encoding="utf-8")
    write_plot(report, paths["metrics.png"])
    if report.sweep is not None:
        paths.update(write_sweep(report.sweep, out))
    return paths
