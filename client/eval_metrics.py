"""Retrieval metrics of `python -m client evaluate`: pure functions, no I/O.

For every product p, the query is p's title and `hits` its ranked hit ids (at least
query_depth(ks) of them when the catalog is that large):
- self_retrieval@K: p is among the first K hits (1 or 0);
- drop p from the hits and keep the first K of the rest: precision@K = relevant kept / K,
  recall@K = relevant kept / all relevant, where relevant = the other products with p's short
  category;
- mrr@10: over the first 10 hits other than p, 1 / rank of the first relevant one, 0 when none.
Products alone in their short category (or with no category) are left out of precision, recall and
MRR, not of self-retrieval. A mode's figures are means over the products they apply to.

    ks = parse_ks("1,5,10");  depth = query_depth(ks)     # hits to ask for per query (11)
    result = evaluate_mode(categories_by_id, hits_by_id, ks)
    result.metrics["precision@5"], result.products, result.category_products
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

MRR_DEPTH = 10
MRR_KEY = f"mrr@{MRR_DEPTH}"


def parse_ks(text: str) -> tuple[int, ...]:
    """"1,5,10" -> (1, 5, 10): sorted, unique, each >= 1; ValueError with a clear message."""
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"--k must be comma-separated whole numbers like 1,5,10, not {text!r}") from None
    if not ks or ks[0] < 1:
        raise ValueError(f"--k needs at least one K and every K >= 1, got {text!r}")
    return tuple(ks)


def metric_keys(ks: Sequence[int]) -> list[str]:
    """Every key of a mode's metrics, in report order."""
    return ([f"self_retrieval@{k}" for k in ks] + [f"precision@{k}" for k in ks]
            + [f"recall@{k}" for k in ks] + [MRR_KEY])


def query_depth(ks: Sequence[int]) -> int:
    """Hits to ask for per query: enough for every K and for MRR@10 after dropping p itself."""
    return max(max(ks), MRR_DEPTH) + 1


@dataclass(frozen=True)
class ProductMetrics:
    self_retrieval: dict[int, float]
    # None when p has no other product in its short category.
    precision: dict[int, float] | None
    recall: dict[int, float] | None
    mrr: float | None


def product_metrics(product_id: str, hit_ids: Sequence[str], relevant: frozenset[str] | set[str],
                    ks: Sequence[int]) -> ProductMetrics:
    """One product's metrics from its ranked hit ids; `relevant` excludes the product itself."""
    self_retrieval = {k: float(product_id in hit_ids[:k]) for k in ks}
    if not relevant:
        return ProductMetrics(self_retrieval, None, None, None)
    rest = [h for h in hit_ids if h != product_id]
    kept = {k: sum(1 for h in rest[:k] if h in relevant) for k in ks}
    mrr = next((1.0 / rank for rank, h in enumerate(rest[:MRR_DEPTH], 1) if h in relevant), 0.0)
    return ProductMetrics(self_retrieval, {k: kept[k] / k for k in ks},
                          {k: kept[k] / len(relevant) for k in ks}, mrr)


@dataclass(frozen=True)
class ModeMetrics:
    # metric key (see metric_keys) -> mean; None when no product has a category peer.
    metrics: dict[str, float | None]
    # Products evaluated (self-retrieval is averaged over these).
    products: int
    # Products with at least one other product in their short category (precision, recall, MRR).
    category_products: int


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def relevant_sets(categories: Mapping[str, str]) -> dict[str, frozenset[str]]:
    """product id -> the other products with its short category (empty for "" or a lone product)."""
    members: dict[str, set[str]] = {}
    for pid, category in categories.items():
        if category:
            members.setdefault(category, set()).add(pid)
    return {pid: frozenset(members.get(category, set()) - {pid}) if category else frozenset()
            for pid, category in categories.items()}


def evaluate_mode(categories: Mapping[str, str], hits: Mapping[str, Sequence[str]],
                  ks: Sequence[int], queries: Iterable[str] | None = None) -> ModeMetrics:
    """Means over the catalog. categories: id -> short category for every product; hits: id ->
    ranked hit ids of the query made of that product's title (every product must have an entry).
    `queries`: only these products' queries count (relevance is still the whole catalog's)."""
    relevant = relevant_sets(categories)
    per_product = [product_metrics(pid, list(hits[pid]), relevant[pid], ks)
                   for pid in (categories if queries is None else queries)]
    with_peers = [m for m in per_product if m.mrr is not None]
    metrics: dict[str, float | None] = {}
    for k in ks:
        metrics[f"self_retrieval@{k}"] = _mean([m.self_retrieval[k] for m in per_product])
        metrics[f"precision@{k}"] = _mean([m.precision[k] for m in with_peers])
        metrics[f"recall@{k}"] = _mean([m.recall[k] for m in with_peers])
    metrics[MRR_KEY] = _mean([m.mrr for m in with_peers])
    return ModeMetrics(metrics, len(per_product), len(with_peers))
