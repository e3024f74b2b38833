"""The files of `recsys evaluate --sweep-fusion`: fusion_sweep.json, fusion_sweep.png and the
paragraph (with its table) that report.md gets (client/fusion_sweep.py computes the figures).

    write_sweep(sweep, out_dir)        # fusion_sweep.json and fusion_sweep.png
    sweep_markdown(sweep)              # "## Fusion sweep" for report.md
    sweep_summary(sweep)               # the lines `recsys evaluate` prints

Deterministic like eval_report.py: rounded figures, sorted JSON keys, the Agg canvas without
pyplot and without the PNG's "Software" chunk.
"""
from __future__ import annotations

from pathlib import Path

from .fusion_sweep import (ALPHAS, METRICS, MRR_KEY, PRECISION_KEY, SERVED, SINGLE_MODES,
                           FusionSweep, weighted_name)

FILES = ("fusion_sweep.json", "fusion_sweep.png")


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _label(name: str, served: str = "") -> str:
    if name == SERVED:
        return f"hybrid as served ({served})" if served else "hybrid as served"
    return f"weighted alpha {name.split('@')[1]}" if name.startswith("weighted@") else name


def best_label(sweep: FusionSweep) -> str:
    if sweep.best_alpha is None:
        return "RRF"
    note = {0.0: " (the lexical order)", 1.0: " (the semantic order)"}.get(sweep.best_alpha, "")
    return f"weighted fusion, alpha {sweep.best_alpha:.1f}{note}"


def sweep_table(sweep: FusionSweep) -> str:
    """Every setting's precision@5 and MRR@10 on both halves (markdown); the best one marked."""
    lines = [f"| setting | tune {PRECISION_KEY} | tune {MRR_KEY} | report {PRECISION_KEY} | "
             f"report {MRR_KEY} |", "|---|---:|---:|---:|---:|"]
    for name in sweep.tune:
        mark = " (best)" if name == sweep.best else ""
        cells = [_cell(sweep.tune[name][m]) for m in METRICS] + \
                [_cell(sweep.report[name][m]) for m in METRICS]
        lines.append(f"| {_label(name, sweep.served)}{mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _verdict(sweep: FusionSweep) -> str:
    head, single = sweep.headline(), sweep.best_single()
    if head["hybrid_best"] is None or single is None:
        return "No product of the report half has a category peer: nothing to compare."
    gap = head["hybrid_best"] - single
    verdict = "reaches" if gap >= 0 else "falls short of"
    return (f"On the report half the chosen setting {verdict} the best single mode "
            f"({head['hybrid_best']:.4f} against {single:.4f}, {gap:+.4f}).")


def sweep_markdown(sweep: FusionSweep) -> str:
    head = sweep.headline()
    return (
        "## Fusion sweep\n\n"
        f"Hybrid search's fusion, measured on this catalog: RRF and weighted fusion (alpha x "
        f"semantic + (1 - alpha) x lexical, min-max normalized scores) at alpha "
        f"{ALPHAS[0]:.1f} to {ALPHAS[-1]:.1f}, next to the single modes. Chosen on the "
        f"{sweep.tune_products} products at even positions of the listing ({sweep.tune_queries} "
        f"with a category peer) by {PRECISION_KEY}: **{best_label(sweep)}**. Reported on the other "
        f"{sweep.report_products} (odd positions, {sweep.report_queries} with a peer), which the "
        f"choice never saw: {PRECISION_KEY} {_cell(head['hybrid_best'])} for the chosen setting, "
        f"{_cell(head['hybrid_rrf'])} for RRF, {_cell(head['semantic'])} semantic, "
        f"{_cell(head['lexical'])} lexical; hybrid as this service serves it ({sweep.served}): "
        f"{_cell(head['hybrid_served'])}. {_verdict(sweep)} To make the chosen setting the "
        f"service's default, start the index service with `{sweep.flags}`.\n\n"
        + sweep_table(sweep) + "\n![precision@5 against alpha](fusion_sweep.png)\n")


def sweep_summary(sweep: FusionSweep) -> str:
    head = sweep.headline()
    return (f"fusion sweep: best on the tuning half ({sweep.tune_products} products at even "
            f"listing positions): {best_label(sweep)}\n"
            f"report half ({sweep.report_products} products at odd positions), {PRECISION_KEY}: "
            f"chosen {_cell(head['hybrid_best'])}, rrf {_cell(head['hybrid_rrf'])}, semantic "
            f"{_cell(head['semantic'])}, lexical {_cell(head['lexical'])}; hybrid as served "
            f"({sweep.served}) {_cell(head['hybrid_served'])}\n{_verdict(sweep)}\n"
            f"start the index service with: {sweep.flags}\n")


def write_sweep_plot(sweep: FusionSweep, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    styles = {"rrf": ("RRF", "--", "tab:red"), "semantic": ("semantic", ":", "tab:blue"),
              "lexical": ("lexical", "-.", "tab:green")}
    values = [f[PRECISION_KEY] for half in (sweep.tune, sweep.report) for f in half.values()
              if f[PRECISION_KEY] is not None]
    limits = (min(values, default=0.0) - 0.01, max(values, default=1.0) + 0.01)  # both panels
    for i, (half, figures, n) in enumerate((("tuning half (even positions)", sweep.tune,
                                             sweep.tune_queries),
                                            ("report half (odd positions)", sweep.report,
                                             sweep.report_queries))):
        axes = figure.add_subplot(1, 2, i + 1)
        points = [(a, figures[weighted_name(a)][PRECISION_KEY]) for a in ALPHAS]
        points = [(a, v) for a, v in points if v is not None]
        axes.plot([a for a, _ in points], [v for _, v in points], marker="o", color="tab:purple",
                  label="weighted fusion")
        for name in ("rrf", *SINGLE_MODES):
            label, style, color = styles[name]
            label += " (chosen)" if name == sweep.best else ""
            if figures[name][PRECISION_KEY] is not None:
                axes.axhline(figures[name][PRECISION_KEY], linestyle=style, color=color, label=label)
        best = figures[sweep.best][PRECISION_KEY]
        if sweep.best_alpha is not None and best is not None:
            axes.plot([sweep.best_alpha], [best], marker="*", markersize=14, color="black",
                      linestyle="none", label=f"chosen: {_label(sweep.best)}")
        axes.set_title(f"{half}, {n} queries")
        axes.set_xlabel("alpha (semantic weight)")
        axes.set_ylabel(f"category {PRECISION_KEY}")
        axes.set_xticks(list(ALPHAS))
        axes.set_ylim(*limits)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})


def write_sweep(sweep: FusionSweep, out: Path) -> dict[str, Path]:
    """fusion_sweep.json and fusion_sweep.png into `out` (which exists); name -> path."""
    paths = {name: out / name for name in FILES}
    paths["fusion_sweep.json"].write_text(sweep.to_json(), encoding="utf-8")
    write_sweep_plot(sweep, paths["fusion_sweep.png"])
    return paths
