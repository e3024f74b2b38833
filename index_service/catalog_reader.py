"""A catalog file -> Catalog, with the app's preprocessing recipe exactly.

The file is CSV (delimiter detected or forced), JSON Lines or Parquet, by its extension:
catalog_files/ turns each into one table of strings, and the recipe below reads that table.

1. Text columns title, brand, description, categories, material, color: a missing column is added
   empty, a missing value is the empty string.
2. price: keep digits and '.', parse as float; what does not parse is missing; missing prices get
   the median of the parsed prices over ALL rows of the file (before repeats and untitled rows are
   dropped), 0.0 when none parses.
3. search text = title, brand, categories (the raw string), material, color, description, joined by
   single spaces (catalog.search_text).
4. short category = last level of the breadcrumb.

Breadcrumb over columns: `--columns categories=category>sub_category>type` takes the levels from
those columns in order, empty ones skipped; its raw string (step 3) is the levels as a Python list
literal, "['Home', 'Lamps']", the form of the sample catalog (and of upserted products).

Ids: the `uniq_id` column (or the column mapped to `id`), else a stable hash of the row. A repeated
id: the last row's data wins, at the position of the id's first row; repeats are counted. A row
without a title is skipped and reported with its line number (row number, for Parquet), and so is
a row the service could not hold (product_limits.py: an id over 1,024 characters, a product over
64 KiB as returned). Nothing else is dropped.
"""
from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .catalog import TEXT_FIELDS, Catalog, assemble
from .catalog_files import CatalogError, RawTable, delimiter_name, read_table
from .catalog_files.base import DELIMITERS
from .catalog_updates import breadcrumb_string
from .product_limits import rows_within_limits

FIELDS = ("id", "title", "brand", "description", "price", "categories", "material", "color", "images")
DEFAULT_COLUMNS = {f: f for f in FIELDS} | {"id": "uniq_id"}
_NOT_PRICE = re.compile(r"[^0-9.]")

LEVEL_SEPARATOR = ">"  # categories=a>b>c: a breadcrumb over columns a, b, c


def parse_columns_spec(spec: str | None) -> dict[str, str]:
    """`id=item_id,title=name` -> {field: column}, merged over the defaults. Names are stripped
    and may hold spaces; `categories=a>b>c` names the columns of a breadcrumb, in order."""
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
        if key == "categories" and any(not c.strip() for c in column.split(LEVEL_SEPARATOR)):
            raise ValueError(f"--columns: categories={column}: a column name is empty (write "
                             "categories=COLUMN or categories=LEVEL1>LEVEL2>...)")
        mapping[key] = column
    return mapping


def breadcrumb_columns(mapping: dict[str, str], present: list[str]) -> list[str]:
    """The columns the breadcrumb comes from: the categories column, or those of a>b>c (a column
    of the file whose name holds '>' is taken whole)."""
    column = mapping["categories"]
    if column in present or LEVEL_SEPARATOR not in column:
        return [column]
    return [c.strip() for c in column.split(LEVEL_SEPARATOR)]


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
    catalog_format: str = "csv"      # "csv", "jsonl" or "parquet"
    csv_delimiter: str = ","         # CSV: the delimiter used ("" for the other formats)
    delimiter_source: str = ""       # CSV: "detected" or "--csv-delimiter"
    position_unit: str = "line"      # skipped_rows count lines ("row" for Parquet)

    def counts(self) -> dict:
        return {"rows_read": self.rows_read, "products": self.products,
                "repeated_ids": self.repeated_ids, "skipped_rows": len(self.skipped_rows),
                "prices_missing": self.prices_missing, "median_price": self.median_price,
                "ids_from": self.ids_from}


def _row_hash(frame: pd.DataFrame) -> list[str]:
    if not len(frame.columns) or not len(frame):  # agg on no rows would answer the column names
        return []
    joined = frame.astype(str).agg("\x1f".join, axis=1)
    return [hashlib.sha256(v.encode("utf-8", "surrogatepass")).hexdigest()[:16] for v in joined]


def _column_names(present: list[str]) -> str:
    """The file's column names for a one-line message (a name holding a newline is quoted)."""
    return ", ".join(name if name.isprintable() else repr(name) for name in present)


def _check_columns(path: Path, table: RawTable, mapping: dict[str, str], present: list[str]) -> None:
    levels = breadcrumb_columns(mapping, present)
    named = [(fld, col) for fld, col in mapping.items() if fld != "categories" or len(levels) == 1]
    named += [(f"categories, level {i}", col) for i, col in enumerate(levels, 1) if len(levels) > 1]
    for fld, col in named:
        if col not in present and col != DEFAULT_COLUMNS.get(fld):
            raise CatalogError(f"{path}: column {col!r} (mapped to {fld}) is not in the file; "
                               f"columns: {_column_names(present)}{_delimiter_hint(table, present)}")
    if mapping["title"] not in present:
        raise CatalogError(f"{path}: no title column {mapping['title']!r} (columns: "
                           f"{_column_names(present) or 'none'}); map one with --columns title=NAME"
                           f"{_delimiter_hint(table, present)}")


def _delimiter_hint(table: RawTable, present: list[str]) -> str:
    """For a CSV file read as one column whose name holds another delimiter: say so."""
    if table.catalog_format != "csv" or len(present) != 1 or not any(
            d in present[0] for d in DELIMITERS if d != table.csv_delimiter):
        return ""
    return (f"; read as CSV with delimiter {delimiter_name(table.csv_delimiter)} "
            f"({table.delimiter_source}): if the file uses another, set it with --csv-delimiter")


def _filled_prices(values: pd.Series, report: LoadReport) -> np.ndarray:
    """Recipe step 2: parse, take the median over all rows of the file (before any drop), fill."""
    prices = parse_prices(values.astype(str))
    parsed = prices[~np.isnan(prices)]
    report.median_price = float(np.median(parsed)) if len(parsed) else 0.0
    report.prices_missing = int(np.isnan(prices).sum())
    return np.where(np.isnan(prices), report.median_price, prices)


def _ids(frame: pd.DataFrame, id_column: str, report: LoadReport) -> list[str]:
    """The id column, else a stable hash of the row (also for rows with an empty id)."""
    if id_column not in frame.columns:
        report.ids_from = "row hash (sha256 of the row's values)"
        return _row_hash(frame)
    ids = frame[id_column].tolist()
    report.ids_from = f"column {id_column}"
    if any(not i.strip() for i in ids):
        hashes = _row_hash(frame)
        ids = [i if i.strip() else h for i, h in zip(ids, hashes)]
    return ids


def _skipper(table: RawTable, report: LoadReport):
    """skip(row, reason): report a row left out, with its line (row) number."""
    positions: list = []

    def skip(r: int, reason: str) -> None:
        if not positions:
            positions.append(table.positions())
        line = positions[0][r] if r < len(positions[0]) else r + 2
        report.skipped_rows.append((int(line), reason))
    return skip


def _titled_rows(titles: pd.Series, skip) -> np.ndarray:
    """Rows with a title; the others are reported to skip(row, reason)."""
    has_title = titles.str.strip().ne("").to_numpy()
    for r in np.flatnonzero(~has_title):
        skip(int(r), "no title")
    return np.flatnonzero(has_title)


def _breadcrumbs_over(frame: pd.DataFrame, levels: list[str]) -> pd.Series:
    """The raw breadcrumb of each row from its level columns: a Python list literal of the
    non-empty levels, in order ("" when all are empty)."""
    rows = zip(*(frame[c].tolist() for c in levels))
    return pd.Series([breadcrumb_string(crumbs) if (crumbs := [v.strip() for v in row if v.strip()])
                      else "" for row in rows], dtype=object)


def _last_of_each_id(kept: np.ndarray, ids: list[str], report: LoadReport) -> np.ndarray:
    """Repeats: the last row of an id wins, placed at the id's first position."""
    kept_ids = [ids[r] for r in kept]
    codes, _ = pd.factorize(pd.Series(kept_ids, dtype=object), sort=False)
    last_of_code = pd.Series(np.arange(len(kept))).groupby(codes).max().to_numpy()
    rows = kept[last_of_code] if len(kept) else kept
    report.repeated_ids = int(len(kept) - len(rows))
    if report.repeated_ids:
        counts = pd.Series(kept_ids).value_counts()
        report.repeated_examples = [str(i) for i in counts[counts > 1].index[:10]]
    report.products = int(len(rows))
    return rows


def _read_table(path: Path, mapping: dict[str, str], csv_delimiter: str) -> RawTable:
    lists = frozenset({mapping["categories"], mapping["images"]})
    return read_table(path, csv_delimiter=csv_delimiter, list_columns=lists)


def read_catalog(path: str | Path, columns: dict[str, str] | None = None,
                 csv_delimiter: str = "auto") -> tuple[Catalog, LoadReport]:
    """Read and preprocess a catalog file (CSV, JSON Lines or Parquet, by its extension).
    `csv_delimiter`: "auto" (detect) or the delimiter of a CSV file. Raises CatalogError with a
    one-line message."""
    path = Path(path)
    mapping = dict(columns or DEFAULT_COLUMNS)
    table = _read_table(path, mapping, csv_delimiter)
    frame, present = table.frame, list(table.frame.columns)
    report = LoadReport(path=str(path), rows_read=len(frame), catalog_format=table.catalog_format,
                        csv_delimiter=table.csv_delimiter, delimiter_source=table.delimiter_source,
                        position_unit=table.position_unit)
    _check_columns(path, table, mapping, present)
    levels = breadcrumb_columns(mapping, present)

    def column(fld: str) -> pd.Series:
        col = mapping[fld]
        if fld == "categories" and len(levels) > 1:
            return _breadcrumbs_over(frame, levels)
        return frame[col] if col in present else pd.Series([""] * len(frame), dtype=object)

    prices = _filled_prices(column("price"), report)
    ids = _ids(frame, mapping["id"], report)
    mapped = set(mapping.values()) | set(levels)
    report.attribute_columns = [c for c in present if c not in mapped]
    texts = {fld: column(fld).tolist() for fld in (*TEXT_FIELDS, "images")}
    attributes = {c: frame[c].tolist() for c in report.attribute_columns}
    skip = _skipper(table, report)  # one: the file's line numbers are read once, if at all
    fitting = rows_within_limits(
        _titled_rows(column("title"), skip), ids, texts,
        lambda r: parse_breadcrumb(texts["categories"][r]), lambda r: parse_images(texts["images"][r]),
        attributes, prices, skip)
    rows = _last_of_each_id(fitting, ids, report)
    taken = {fld: [texts[fld][r] for r in rows] for fld in TEXT_FIELDS}
    unique = {raw: parse_breadcrumb(raw) for raw in set(taken["categories"])}
    catalog = assemble(
        ids=[ids[r] for r in rows], texts=taken,
        images=[parse_images(texts["images"][r]) for r in rows],
        breadcrumbs=[unique[raw] for raw in taken["categories"]],
        price=prices[rows].astype(np.float64),
        attributes={c: [values[r] for r in rows] for c, values in attributes.items()},
        source_rows=rows.astype(np.int64), median_price=report.median_price)
    return catalog, report
