"""The Catalog: products in catalog order, stored by column (see columns.py: no Python object per
product), saved as a directory of memory-mapped .npy files. catalog_reader.py fills one from a
catalog file; catalog_updates.py appends and selects rows.

The search text of a product (recipe step 3) is `search_text(...)`: title, brand, categories
(the raw breadcrumb string), material, color, description, joined by single spaces.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .columns import IdLookup, ListColumn, StringColumn, load_mapped

TEXT_FIELDS = ("title", "brand", "description", "categories", "material", "color")
SEARCH_TEXT_ORDER = ("title", "brand", "categories", "material", "color", "description")
_STRING_FIELDS = ("id", "title", "description", "material", "color", "categories_raw", "images")


def search_text(title: str, brand: str, categories_raw: str, material: str, color: str,
                description: str) -> str:
    return " ".join((title, brand, categories_raw, material, color, description))


class Catalog:
    """Products in catalog order, stored by column. Row i of every column is product i."""

    def __init__(self, *, strings: dict[str, StringColumn], brands: np.ndarray,
                 brand_vocab: list[str], breadcrumbs: ListColumn, category_vocab: list[str],
                 price: np.ndarray, attributes: dict[str, StringColumn], lookup: IdLookup,
                 source_rows: np.ndarray, median_price: float = 0.0):
        self.strings, self.brands, self.brand_vocab = strings, brands, brand_vocab
        self.source_rows = source_rows  # the file's data-row index (0-based) of each product; -1: upserted
        self.median_price = median_price  # the price of a product that has none (recipe step 2)
        self.breadcrumbs, self.category_vocab = breadcrumbs, category_vocab
        self.price, self.attributes, self.lookup = price, attributes, lookup
        self.ids = strings["id"]
        self.brand_codes = {b: i for i, b in enumerate(brand_vocab)}
        self.category_codes = {c: i for i, c in enumerate(category_vocab)}

    def __len__(self) -> int:
        return len(self.ids)

    def row_of(self, product_id: str) -> int | None:
        return self.lookup.find(product_id, self.ids)

    def brand(self, row: int) -> str:
        return self.brand_vocab[int(self.brands[row])]

    def breadcrumb(self, row: int) -> list[str]:
        return [self.category_vocab[int(c)] for c in self.breadcrumbs[row]]

    def search_text(self, row: int) -> str:
        s = self.strings
        return search_text(s["title"][row], self.brand(row), s["categories_raw"][row],
                           s["material"][row], s["color"][row], s["description"][row])

    def search_texts(self) -> list[str]:
        return [self.search_text(i) for i in range(len(self))]

    def product(self, row: int) -> dict:
        """Plain fields of one product, named as in recsys.v1.Product."""
        s = self.strings
        crumbs = self.breadcrumb(row)
        images = s["images"][row]
        return {
            "id": s["id"][row], "title": s["title"][row], "brand": self.brand(row),
            "description": s["description"][row], "price": float(self.price[row]),
            "categories": crumbs, "category": crumbs[-1] if crumbs else "",
            "material": s["material"][row], "color": s["color"][row],
            "images": images.split("\n") if images else [],
            "attributes": self.product_attributes(row),
        }

    def product_attributes(self, row: int) -> dict[str, str]:
        """The product's own attributes: the columns where it has a value. An empty value is
        left out (proto3 maps: absent means empty), so that a column another product added is
        no attribute of this one."""
        return {name: value for name, col in self.attributes.items() if (value := col[row])}

    # --- persistence: a directory of .npy files (memory-mapped on load) + catalog.json ---------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, col in self.strings.items():
            col.save(directory, name)
        for i, (name, col) in enumerate(self.attributes.items()):
            col.save(directory, f"attr{i}")
        self.breadcrumbs.save(directory, "breadcrumbs")
        self.lookup.save(directory, "lookup")
        np.save(directory / "brands.npy", self.brands)
        np.save(directory / "price.npy", self.price)
        np.save(directory / "source_rows.npy", self.source_rows)
        meta = {"brand_vocab": self.brand_vocab, "category_vocab": self.category_vocab,
                "attributes": list(self.attributes), "products": len(self),
                "median_price": self.median_price}
        (directory / "catalog.json").write_text(json.dumps(meta, ensure_ascii=False))

    @classmethod
    def load(cls, directory: Path) -> "Catalog":
        meta = json.loads((directory / "catalog.json").read_text())
        return cls(
            strings={name: StringColumn.load(directory, name) for name in _STRING_FIELDS},
            brands=load_mapped(directory / "brands.npy"), brand_vocab=meta["brand_vocab"],
            breadcrumbs=ListColumn.load(directory, "breadcrumbs"),
            category_vocab=meta["category_vocab"],
            price=load_mapped(directory / "price.npy"),
            attributes={name: StringColumn.load(directory, f"attr{i}")
                        for i, name in enumerate(meta["attributes"])},
            lookup=IdLookup.load(directory, "lookup"),
            source_rows=load_mapped(directory / "source_rows.npy"),
            median_price=float(meta.get("median_price", 0.0)))


def _codes(values: list[str]) -> tuple[np.ndarray, list[str]]:
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=False)
    return codes.astype(np.int32), [str(u) for u in uniques]


def assemble(*, ids: list[str], texts: dict[str, list[str]], images: list[list[str]],
             breadcrumbs: list[list[str]], price: np.ndarray, attributes: dict[str, list[str]],
             source_rows: np.ndarray, median_price: float) -> Catalog:
    """A Catalog from per-field lists (one item per product). `texts` holds TEXT_FIELDS, with
    `categories` the raw breadcrumb string; `breadcrumbs` its levels, parsed."""
    category_vocab: dict[str, int] = {}
    crumb_codes = [[category_vocab.setdefault(level, len(category_vocab)) for level in levels]
                   for levels in breadcrumbs]
    brand_codes, brand_vocab = _codes(texts["brand"])
    strings = {
        "id": StringColumn.from_strings(ids),
        **{name: StringColumn.from_strings(texts[name])
           for name in ("title", "description", "material", "color")},
        "categories_raw": StringColumn.from_strings(texts["categories"]),
        "images": StringColumn.from_strings("\n".join(urls) for urls in images),
    }
    return Catalog(
        strings=strings, brands=brand_codes, brand_vocab=brand_vocab,
        breadcrumbs=ListColumn.from_lists(crumb_codes), category_vocab=list(category_vocab),
        price=np.asarray(price, dtype=np.float64),
        attributes={name: StringColumn.from_strings(values) for name, values in attributes.items()},
        lookup=IdLookup.build(ids), source_rows=np.asarray(source_rows, dtype=np.int64),
        median_price=median_price)
