"""FilterSpec -> a Milvus boolean expression, applied inside the search (exact, as the FAISS
store's mask is): categories match any level (ARRAY_CONTAINS_ANY), brands exactly, prices with
inclusive bounds. Values are quoted here, never pasted: a brand holding `"` or `\\` is a value,
not syntax.
"""
from __future__ import annotations

from ..filters import FilterSpec


def quote(value: str) -> str:
    """A Milvus string literal: double-quoted, with backslash escapes."""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{escaped}"'


def _number(value: float) -> str:
    return format(float(value), ".17g")


def filter_expression(spec: FilterSpec, exclude_ids=()) -> str:
    """The expression for `spec` (and none of `exclude_ids`); "" when nothing is filtered."""
    parts = []
    if spec.categories:
        parts.append(f"ARRAY_CONTAINS_ANY(categories, [{', '.join(map(quote, spec.categories))}])")
    if spec.brands:
        parts.append(f"brand in [{', '.join(map(quote, spec.brands))}]")
    if spec.min_price is not None:
        parts.append(f"price >= {_number(spec.min_price)}")
    if spec.max_price is not None:
        parts.append(f"price <= {_number(spec.max_price)}")
    if len(exclude_ids) == 1:
        parts.append(f"id != {quote(exclude_ids[0])}")
    elif exclude_ids:
        parts.append(f"id not in [{', '.join(map(quote, exclude_ids))}]")
    return " and ".join(parts)


def ids_expression(ids) -> str:
    return f"id in [{', '.join(map(quote, ids))}]"
