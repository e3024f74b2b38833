"""CSV -> Catalog, with the app's preprocessing recipe exactly (BRIEF.md section 1).

1. Text columns title, brand, description, categories, material, color: a missing column is added
   empty, a missing value is the empty string.
2. price: keep digits and '.', parse as float; what does not parse is missing; missing prices get
   the median of the parsed prices over ALL rows of the file (before repeats and untitled rows are
   dropped), 0.0 when none parses.
3. search text = title, brand, categories (the raw string), material, color, description, joined by
   single spaces.
4. short category = last level of the breadcrumb.

Ids: the `uniq_id` column (or the column mapped to `id`), else a stable hash of the row. A repeated
id: the last row's data wins, at the position of the id's first row; repeats are counted. A row
without a title is skipped and reported with its line number. Nothing else is dropped.

The Catalog is columnar (see columns.py): no Python object per product.
"""
from __future__ import annotations

import ast
import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .columns import IdLookup, ListColumn, StringColumn, load_mapped

TEXT_FIELDS = ("title", "brand", "description", "categories", "material", "color")
SEARCH_TEXT_ORDER = ("title", "brand", "categories", "material", "color", "description")
FIELDS = ("id", "title", "brand", "description", "price", "categories", "material", "color", "images")
DEFAULT_COLUMNS = {f: f for f in FIELDS} | {"id": "uniq_id"}
_STRING_FIELDS = ("id", "title", "description", "material", "color", "categories_raw", "images")
_NOT_PRICE = re.compile(r"[^0-9.]")


class CatalogError(Exception):
    """A catalog that cannot be used; the message is one line naming the file and the problem."""


def parse_columns_spec(spec: str | None) -> dict[str, str]:
    """`id=item_id,title=name` -> {field: column}, merged over the defaults."""
    mapping = dict(DEFAULT_COLUMNS)
    if not spec:
        return mapping
    for part in spec.split(","):
        if not part.strip():
            continue
        key, sep, column = part.partition("=")
        key, column = key.strip(), column.strip()
        if not sep or not column:
            raise ValueError(f"--columns: expected FIELD=COLUMN, got {part.strip()!r}")
        if key not in FIELDS:
            raise ValueError(f"--columns: unknown field {key!r} (fields: {', '.join(FIELDS)})")
        mapping[key] = column
    return mapping


def _literal_list(text: str) -> list[str] | None:
    """The items of a stringified Python list (stripped, empty ones dropped), else None."""
    if not (text.startswith("[") and text.endswith("]")):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, (list, tuple)):
        return None
    return [s for s in (str(v).strip() for v in value) if s]


def _split_list(raw: str, separators: tuple[str, ...]) -> list[str]:
    """A stringified Python list, else the first separator found splits, else one item."""
    text = raw.strip()
    if not text:
        return []
    items = _literal_list(text)
    if items is not None:
        return items
    for sep in separators:
        if sep in text:
            return [s for s in (p.strip() for p in text.split(sep)) if s]
    return [text]


def parse_breadcrumb(raw: str) -> list[str]:
    """A stringified Python list, or levels separated by ' > ' or '|', else one level."""
    return _split_list(raw, (" > ", "|"))


def parse_images(raw: str) -> list[str]:
    """A stringified list of URLs (spaces stripped), or URLs separated by '|', or one URL."""
    return _split_list(raw, ("|",))


def parse_prices(values: pd.Series) -> np.ndarray:
    """Recipe step 2 without the fill: float64, NaN where nothing parses."""
    cleaned = values.str.replace(_NOT_PRICE, "", regex=True)
    prices = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    prices[np.isinf(prices)] = np.nan  # 400 digits parse as inf: not a price
    return prices


def search_text(title: str, brand: str, categories_raw: str, material: str, color: str,
                description: str) -> str:
    return " ".join((title, brand, categories_raw, material, color, description))


@dataclass
class LoadReport:
    """What ingestion did, for build_report.txt and the manifest."""
    path: str
    rows_read: int = 0
    products: int = 0
    repeated_ids: int = 0
    repeated_examples: list[str] = field(default_factory=list)
    skipped_rows: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    prices_missing: int = 0
    median_price: float = 0.0
    ids_from: str = ""
    attribute_columns: list[str] = field(default_factory=list)

    def counts(self) -> dict:
        return {"rows_read": self.rows_read, "products": self.products,
                "repeated_ids": self.repeated_ids, "skipped_rows": len(self.skipped_rows),
                "prices_missing": self.prices_missing, "median_price": self.median_price,
                "ids_from": self.ids_from}


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
            "attributes": {name: col[row] for name, col in self.attributes.items()},
        }

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


# --- ingestion --------------------------------------------------------------------------------
def _read_frame(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise CatalogError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise CatalogError(f"{path}: not a CSV file: it is empty (no header row)") from None
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not a CSV file: not UTF-8 text ({exc.reason} at byte "
                           f"{exc.start})") from None
    except (pd.errors.ParserError, ValueError, csv.Error) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CatalogError(f"{path}: not a valid CSV file: {first}") from None
    return frame


def _record_lines(path: Path) -> list[int]:
    """Starting line number of every non-blank data record (header = line 1)."""
    starts = []
    limit = csv.field_size_limit(2**31 - 1)  # pandas read fields of any size (csv: 128 KiB)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            next(reader, None)
            previous_end = reader.line_num
            for record in reader:
                if record:  # pandas skips only truly blank lines
                    starts.append(previous_end + 1)
                previous_end = reader.line_num
    finally:
        csv.field_size_limit(limit)
    return starts


def _row_hash(frame: pd.DataFrame) -> list[str]:
    joined = frame.astype(str).agg("\x1f".join, axis=1) if len(frame.columns) else pd.Series([], dtype=str)
    return [hashlib.sha256(v.encode("utf-8", "surrogatepass")).hexdigest()[:16] for v in joined]


def _codes(values: list[str]) -> tuple[np.ndarray, list[str]]:
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=False)
    return codes.astype(np.int32), [str(u) for u in uniques]


def assemble(*, ids: list[str], texts: dict[str, list[str]], images: list[list[str]],
             breadcrumbs: list[list[str]] | None, price: np.ndarray, attributes: dict[str, list[str]],
             source_rows: np.ndarray, median_price: float) -> Catalog:
    """A Catalog from per-field lists (one item per product). `texts` holds TEXT_FIELDS, with
    `categories` the raw breadcrumb string; `breadcrumbs` None: parsed from it."""
    if breadcrumbs is None:
        unique = {raw: parse_breadcrumb(raw) for raw in set(texts["categories"])}
        breadcrumbs = [unique[raw] for raw in texts["categories"]]
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


def _column_names(present: list[str]) -> str:
    """The file's column names for a one-line message (a name holding a newline is quoted)."""
    return ", ".join(name if name.isprintable() else repr(name) for name in present)


def read_catalog(path: str | Path, columns: dict[str, str] | None = None) -> tuple[Catalog, LoadReport]:
    """Read and preprocess a catalog CSV. Raises CatalogError with a one-line message."""
    path = Path(path)
    mapping = dict(columns or DEFAULT_COLUMNS)
    frame = _read_frame(path)
    report = LoadReport(path=str(path), rows_read=len(frame))
    present = list(frame.columns)

    for fld, col in mapping.items():
        if col not in present and col != DEFAULT_COLUMNS.get(fld):
            raise CatalogError(f"{path}: column {col!r} (mapped to {fld}) is not in the file; "
                               f"columns: {_column_names(present)}")
    if mapping["title"] not in present:
        raise CatalogError(f"{path}: no title column {mapping['title']!r} (columns: "
                           f"{_column_names(present) or 'none'}); map one with --columns title=NAME")

    def column(fld: str) -> pd.Series:
        col = mapping[fld]
        return frame[col] if col in present else pd.Series([""] * len(frame), dtype=object)

    # recipe 2: parse prices and take the median over all rows of the file, before any drop
    prices = parse_prices(column("price").astype(str))
    parsed = prices[~np.isnan(prices)]
    report.median_price = float(np.median(parsed)) if len(parsed) else 0.0
    report.prices_missing = int(np.isnan(prices).sum())
    prices = np.where(np.isnan(prices), report.median_price, prices)

    # ids: the id column, else a stable hash of the row (also for rows with an empty id)
    if mapping["id"] in present:
        ids = column("id").tolist()
        report.ids_from = f"column {mapping['id']}"
        if any(not i.strip() for i in ids):
            hashes = _row_hash(frame)
            ids = [i if i.strip() else h for i, h in zip(ids, hashes)]
    else:
        ids = _row_hash(frame)
        report.ids_from = "row hash (sha256 of the row's values)"

    titles = column("title")
    has_title = titles.str.strip().ne("").to_numpy()
    if not has_title.all():
        lines = _record_lines(path)
        for r in np.flatnonzero(~has_title):
            line = lines[r] if r < len(lines) else r + 2
            report.skipped_rows.append((int(line), "no title"))
    kept = np.flatnonzero(has_title)

    # repeats: last row wins, placed at the id's first position
    kept_ids = [ids[r] for r in kept]
    codes, _ = pd.factorize(pd.Series(kept_ids, dtype=object), sort=False)
    last_of_code = pd.Series(np.arange(len(kept))).groupby(codes).max().to_numpy()
    rows = kept[last_of_code] if len(kept) else kept
    report.repeated_ids = int(len(kept) - len(rows))
    if report.repeated_ids:
        counts = pd.Series(kept_ids).value_counts()
        report.repeated_examples = [str(i) for i in counts[counts > 1].index[:10]]
    report.products = int(len(rows))

    taken = {fld: column(fld).to_numpy()[rows].tolist() for fld in TEXT_FIELDS}
    mapped = set(mapping.values())
    report.attribute_columns = [c for c in present if c not in mapped]
    catalog = assemble(
        ids=[ids[r] for r in rows], texts=taken,
        images=[parse_images(v) for v in column("images").to_numpy()[rows].tolist()],
        breadcrumbs=None, price=prices[rows].astype(np.float64),
        attributes={c: frame[c].to_numpy()[rows].tolist() for c in report.attribute_columns},
        source_rows=rows.astype(np.int64), median_price=report.median_price)
    return catalog, report
