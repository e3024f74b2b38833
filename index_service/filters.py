"""recsys.v1.Filter -> a validated FilterSpec -> a boolean mask of the catalog rows it allows.

Exact semantics: a product matches when every set field matches: one of `categories` at ANY level
of its breadcrumb (exact, case-sensitive), one of `brands` (exact), min_price <= price <= max_price.
The mask goes into the vector search (filtering inside the search, never after a cut top-k).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from servekit.errors import InvalidArgument

from .catalog import Catalog


@dataclass(frozen=True)
class FilterSpec:
    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    min_price: float | None = None
    max_price: float | None = None

    @property
    def empty(self) -> bool:
        return (not self.categories and not self.brands and self.min_price is None
                and self.max_price is None)


def _bound(name: str, value: float) -> float:
    if math.isnan(value) or math.isinf(value):
        raise InvalidArgument(f"filter.{name} must be a finite number, got {value}")
    return float(value)


# Values in filter.categories, and in filter.brands: one request of 3 million of each (58 MB,
# under the message limit) took the index from 0.3 to 1 GB, eight at once to 5.8 GB.
MAX_FILTER_VALUES = 1000


def from_proto(message) -> FilterSpec:
    """Validate a recsys.v1.Filter (None or unset: no filter). Raises InvalidArgument."""
    if message is None:
        return FilterSpec()
    min_price = _bound("min_price", message.min_price) if message.HasField("min_price") else None
    max_price = _bound("max_price", message.max_price) if message.HasField("max_price") else None
    if min_price is not None and max_price is not None and min_price > max_price:
        raise InvalidArgument(f"filter.min_price ({min_price}) is greater than filter.max_price "
                              f"({max_price})")
    for name in ("categories", "brands"):
        count = len(getattr(message, name))
        if count > MAX_FILTER_VALUES:
            raise InvalidArgument(f"filter.{name} holds {count} values; at most "
                                  f"{MAX_FILTER_VALUES} (a filter matches any of them)")
    return FilterSpec(categories=tuple(message.categories), brands=tuple(message.brands),
                      min_price=min_price, max_price=max_price)


def allowed_mask(catalog: Catalog, spec: FilterSpec, live: np.ndarray | None = None) -> np.ndarray | None:
    """Rows allowed by `spec` (and by `live`, a mask of rows not deleted); None = all rows."""
    if spec.empty:
        return None if live is None else live
    n = len(catalog)
    mask = np.ones(n, dtype=bool) if live is None else live.copy()
    if spec.categories:
        codes = np.array([catalog.category_codes[c] for c in spec.categories
                          if c in catalog.category_codes], dtype=np.int32)
        mask &= catalog.breadcrumbs.rows_with_any(codes, n)
    if spec.brands:
        codes = np.array([catalog.brand_codes[b] for b in spec.brands if b in catalog.brand_codes],
                         dtype=np.int32)
        mask &= np.isin(catalog.brands, codes)
    if spec.min_price is not None:
        mask &= catalog.price >= spec.min_price
    if spec.max_price is not None:
        mask &= catalog.price <= spec.max_price
    return mask
