"""`recsys evaluate --sweep-fusion`: which hybrid fusion suits the served catalog, measured through
the live service, and reported on queries it was not tuned on.

Settings: the two single modes (semantic, lexical), hybrid as the service serves it by default
("hybrid": its --hybrid-fusion / --hybrid-alpha, shown by Stats), RRF, and weighted fusion at
alpha 0.0, 0.1, ..., 1.0 (MODE_HYBRID with HybridParams.fusion and .alpha set; the service's
candidate depth). evaluate.py queries every product's title in every setting; this module scores
them. "hybrid" is how to check a service restarted with the printed flags: its figures on the
report half are then the chosen setting's.

The split: the products at even positions of the listing (0, 2, 4, ... in ListProducts order:
catalog order on the FAISS store, id order on Milvus) are the tuning half, those at odd positions
the report half. Relevance is the whole catalog's either way (a query's category peers may sit in
either half); only the queries are split. The best setting is the hybrid one (RRF or a weighted
alpha: what the service's flags can set) with the highest precision@5 on the tuning half; ties go
to the higher MRR@10, then to RRF (the service's default), then to the alpha nearest 0.5. Its
figures on the report half are the ones to trust. Weighted alpha 1 is the semantic order and alpha
0 the lexical order (fusion.py), so the choice can fall back on a single mode.

    settings = sweep_settings()                     # name -> (mode, HybridParams | None)
    sweep = score_sweep(categories, listing, hits, served="rrf")  # hits: setting -> id -> hit ids
    sweep.best, sweep.flags, sweep.to_json()
    sweep.resplit(shuffled_listing)                 # the same searches, another split
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .eval_metrics import MRR_KEY, evaluate_mode
from .types import HybridParams

ALPHAS = tuple(i / 10 for i in range(11))
K = 5
PRECISION_KEY = f"precision@{K}"
METRICS = (PRECISION_KEY, MRR_KEY)
SINGLE_MODES = ("semantic", "lexical")
SERVED = "hybrid"  # MODE_HYBRID with no HybridParams: the service's default fusion
DECIMALS = 4

Figures = Mapping[str, float | None]  # metric key -> mean


def weighted_name(alpha: float) -> str:
    return f"weighted@{alpha:.1f}"


def hybrid_names() -> list[str]:
    """The settings the service's flags can make its default, in report order."""
    return ["rrf"] + [weighted_name(a) for a in ALPHAS]


def sweep_settings() -> dict[str, tuple[str, HybridParams | None]]:
    """Setting name -> (mode, hybrid params) to search with."""
    settings: dict[str, tuple[str, HybridParams | None]] = {
        m: (m, None) for m in (*SINGLE_MODES, SERVED)}
    settings["rrf"] = ("hybrid", HybridParams(fusion="rrf"))
    for alpha in ALPHAS:
        settings[weighted_name(alpha)] = ("hybrid", HybridParams(fusion="weighted", alpha=alpha))
    return settings


def split_halves(listing: Sequence[str]) -> tuple[list[str], list[str]]:
    """(tune, report): the ids at even positions of the listing (0, 2, ...) and at odd ones."""
    ids = list(listing)
    return ids[0::2], ids[1::2]


def _sort_key(name: str, figures: Figures) -> tuple:
    """Best first: precision@5, then MRR@10, then RRF, then alpha nearest 0.5 (then lower alpha)."""
    alpha = None if name == "rrf" else float(name.split("@")[1])
    return (-(figures[PRECISION_KEY] or 0.0), -(figures[MRR_KEY] or 0.0), alpha is not None,
            0.0 if alpha is None else round(abs(alpha - 0.5), 6), alpha or 0.0)


def choose_best(tune: Mapping[str, Figures]) -> str:
    """The best hybrid setting on the tuning half's figures (see the module docstring)."""
    return min(hybrid_names(), key=lambda name: _sort_key(name, tune[name]))


@dataclass(frozen=True)
class FusionSweep:
    # setting name -> metric key -> mean, rounded to DECIMALS, on each half.
    tune: Mapping[str, Figures]
    report: Mapping[str, Figures]
    # Products in each half, and of those the ones with a category peer (precision and MRR).
    tune_products: int
    report_products: int
    tune_queries: int
    report_queries: int
    best: str  # "rrf" or weighted_name(alpha)
    # What "hybrid" is on the service that was measured, e.g. "rrf" or "weighted, alpha 0.3".
    served: str = "the service's default"
    # What the figures were scored from, so that resplit can score them on another split.
    categories: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    listing: Sequence[str] = field(default=(), repr=False, compare=False)
    hits: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict, repr=False,
                                                            compare=False)

    def resplit(self, listing: Sequence[str]) -> FusionSweep:
        """The same searches scored on another order of the same products: its even positions
        tune, its odd ones report (a shuffled listing is a random halving: bench.fusion_sweep
        measures how often the choice holds up over many)."""
        if sorted(listing) != sorted(self.listing):
            raise ValueError("resplit needs an order of the products the sweep searched")
        return score_sweep(self.categories, listing, self.hits, self.served)

    @property
    def best_fusion(self) -> str:
        return "rrf" if self.best == "rrf" else "weighted"

    @property
    def best_alpha(self) -> float | None:
        return None if self.best == "rrf" else float(self.best.split("@")[1])

    @property
    def flags(self) -> str:
        """The index service's flags that make the best setting its default."""
        if self.best_alpha is None:
            return "--hybrid-fusion rrf"
        return f"--hybrid-fusion weighted --hybrid-alpha {self.best_alpha:.1f}"

    def headline(self) -> dict[str, float | None]:
        """precision@5 on the report half: the single modes, the best hybrid setting, RRF, and
        hybrid as the measured service serves it."""
        return {"semantic": self.report["semantic"][PRECISION_KEY],
                "lexical": self.report["lexical"][PRECISION_KEY],
                "hybrid_best": self.report[self.best][PRECISION_KEY],
                "hybrid_rrf": self.report["rrf"][PRECISION_KEY],
                "hybrid_served": self.report[SERVED][PRECISION_KEY]}

    def best_single(self) -> float | None:
        """The better single mode's precision@5 on the report half (None when no product of the
        report half has a category peer): what the chosen setting has to reach."""
        head = self.headline()
        return max((v for v in (head["semantic"], head["lexical"]) if v is not None), default=None)

    def to_json(self) -> str:
        body = {"best": {"fusion": self.best_fusion, "alpha": self.best_alpha},
                "flags": self.flags, "served": self.served,
                "split": {"order": "ListProducts", "tune": "even positions",
                          "report": "odd positions", "tune_products": self.tune_products,
                          "report_products": self.report_products,
                          "tune_queries": self.tune_queries, "report_queries": self.report_queries},
                "tune": _nested(self.tune), "report": self.headline(),
                "report_sweep": _nested(self.report)}
        return json.dumps(body, indent=2, sort_keys=True) + "\n"


def _nested(figures: Mapping[str, Figures]) -> dict:
    """{"semantic": {...}, "lexical": {...}, "hybrid": {...}, "rrf": {...},
    "weighted": {"0.0": {...}, ...}}."""
    out: dict = {name: dict(figures[name]) for name in (*SINGLE_MODES, SERVED, "rrf")}
    out["weighted"] = {f"{a:.1f}": dict(figures[weighted_name(a)]) for a in ALPHAS}
    return out


def _rounded(metrics: Mapping[str, float | None]) -> dict[str, float | None]:
    return {key: None if metrics[key] is None else round(metrics[key], DECIMALS) for key in METRICS}


def served_name(fusion: str, alpha: float) -> str:
    """Stats.hybrid_fusion and .hybrid_alpha in words."""
    if fusion == "weighted":
        return f"weighted, alpha {alpha:g}"
    return fusion or "the service's default"


def score_sweep(categories: Mapping[str, str], listing: Sequence[str],
                hits: Mapping[str, Mapping[str, Sequence[str]]],
                served: str = "the service's default") -> FusionSweep:
    """The sweep's figures. categories: id -> short category of every product; listing: the ids in
    ListProducts order; hits: setting name (sweep_settings) -> id -> the title query's hit ids;
    served: what "hybrid" is on the measured service (served_name)."""
    tune_ids, report_ids = split_halves(listing)
    halves = {}
    for half, ids in (("tune", tune_ids), ("report", report_ids)):
        results = {name: evaluate_mode(categories, hits[name], (K,), queries=ids)
                   for name in sweep_settings()}
        halves[half] = ({name: _rounded(r.metrics) for name, r in results.items()},
                        next(iter(results.values())).category_products)
    (tune, tune_queries), (report, report_queries) = halves["tune"], halves["report"]
    return FusionSweep(tune=tune, report=report, tune_products=len(tune_ids),
                       report_products=len(report_ids), tune_queries=tune_queries,
                       report_queries=report_queries, best=choose_best(tune), served=served,
                       categories=categories, listing=tuple(listing), hits=hits)
