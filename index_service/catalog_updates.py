"""Catalogs from upserted products, appended to or selected from a Catalog (column by column).

Used by live updates (Snapshot.with_upserts) and by compaction (Catalog of the live rows):

    small = products_catalog([{"id": "x", "title": "...", ...}], median_price=base.median_price)
    bigger = concat(base, small)          # rows of `small` follow base's rows
    live_only = select(bigger, rows)      # a catalog of those rows, in that order (attribute
                                          # columns none of them uses dropped)

A product's fields are named as in recsys.v1.Product; an unset price (None) is the catalog's
median price (recipe step 2). The search text of an upserted product uses its breadcrumb written
as a Python list literal (the form of the shared catalog, e.g. "['Home', 'Furniture']").
"""
from __future__ import annotations

import numpy as np

from .catalog import TEXT_FIELDS, Catalog, assemble
from .columns import StringColumn


def breadcrumb_string(levels: list[str]) -> str:
    return str([str(level) for level in levels])


def products_catalog(products: list[dict], median_price: float) -> Catalog:
    texts = {name: [str(p.get(name) or "") for p in products] for name in TEXT_FIELDS if name != "categories"}
    texts["categories"] = [breadcrumb_string(p.get("categories") or []) for p in products]
    names = sorted({key for p in products for key, value in (p.get("attributes") or {}).items()
                    if value})  # an empty value is no attribute: it adds no column
    return assemble(
        ids=[str(p["id"]) for p in products], texts=texts,
        images=[[u.strip() for u in p.get("images") or [] if u.strip()] for p in products],
        breadcrumbs=[[str(c) for c in p.get("categories") or []] for p in products],
        price=np.array([median_price if p.get("price") is None else float(p["price"]) for p in products],
                       dtype=np.float64),
        attributes={n: [str((p.get("attributes") or {}).get(n, "")) for p in products] for n in names},
        source_rows=np.full(len(products), -1, dtype=np.int64), median_price=median_price)


def _merged_vocab(base: list[str], codes: dict[str, int], extra: list[str]) -> tuple[list[str], np.ndarray]:
    vocab = list(base)
    index = dict(codes)
    code_map = np.zeros(len(extra), dtype=np.int32)
    for i, value in enumerate(extra):
        if value not in index:
            index[value] = len(vocab)
            vocab.append(value)
        code_map[i] = index[value]
    return vocab, code_map


def concat(a: Catalog, b: Catalog) -> Catalog:
    brand_vocab, brand_map = _merged_vocab(a.brand_vocab, a.brand_codes, b.brand_vocab)
    category_vocab, category_map = _merged_vocab(a.category_vocab, a.category_codes, b.category_vocab)
    attributes = {}
    for name in list(a.attributes) + [n for n in b.attributes if n not in a.attributes]:
        left = a.attributes.get(name) or StringColumn.empty(len(a))
        right = b.attributes.get(name) or StringColumn.empty(len(b))
        attributes[name] = left.concat(right)
    return Catalog(
        strings={name: col.concat(b.strings[name]) for name, col in a.strings.items()},
        brands=np.concatenate([a.brands, brand_map[np.asarray(b.brands)]]).astype(np.int32),
        brand_vocab=brand_vocab, breadcrumbs=a.breadcrumbs.concat(b.breadcrumbs, category_map),
        category_vocab=category_vocab, price=np.concatenate([a.price, b.price]),
        attributes=attributes, lookup=a.lookup.concat(b.lookup, len(a)),
        source_rows=np.concatenate([a.source_rows, b.source_rows]), median_price=a.median_price)


def select(c: Catalog, rows: np.ndarray) -> Catalog:
    """The catalog of `rows`, in that order (compaction: the live rows). An attribute column that
    none of them has a value in is dropped: the column of products since deleted or replaced,
    or of a file's column left empty, does not outlive them."""
    rows = np.asarray(rows, dtype=np.int64)
    attributes = {name: col.select(rows) for name, col in c.attributes.items()}
    return Catalog(
        strings={name: col.select(rows) for name, col in c.strings.items()},
        brands=np.asarray(c.brands)[rows], brand_vocab=c.brand_vocab,
        breadcrumbs=c.breadcrumbs.select(rows), category_vocab=c.category_vocab,
        price=np.asarray(c.price)[rows],
        attributes={name: col for name, col in attributes.items() if col.offsets[-1] > 0},
        lookup=c.lookup.select(rows, len(c)), source_rows=np.asarray(c.source_rows)[rows],
        median_price=c.median_price)
