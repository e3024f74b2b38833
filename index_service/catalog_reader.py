"""A catalog file -> Catalog, with the app's preprocessing recipe exactly.

1. Text columns title, brand, description, categories, material, color: a missing column is added
   empty, a missing value is the empty string.
2. price: keep digits and '.', parse as float; what does not parse is missing; missing prices get
   the median of the parsed prices over ALL rows of the file (before repeats and untitled rows are
   dropped), 0.0 when none parses.
3. search text = title, brand, categories (the raw string), material, color, description, joined by
   single spaces (catalog.search_text).
4. short category = last level of the breadcrumb.

Ids: the `uniq_id` column (or the column mapped to `id`), else a stable hash of the row. A repeated
id: the last row's data wins, at the position of the id's first row; repeats are counted. A row
without a title is skipped and reported with its line number. Nothing else is dropped.
"""
from __future__ import annotations

import ast
import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .catalog import TEXT_FIELDS, Catalog, assemble

FIELDS = ("id", "title", "brand", "description", "price", "categories", "material", "color", "images")
DEFAULT_COLUMNS = {f: f for f in FIELDS} | {"id": "uniq_id"}
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


# --- reading ---------------------------------------------------------------------------------
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


def _column_names(present: list[str]) -> str:
    """The file's column names for a one-line message (a name holding a newline is quoted)."""
    return ", ".join(name if name.isprintable() else repr(name) for name in present)


def _check_columns(path: Path, mapping: dict[str, str], present: list[str]) -> None:
    for fld, col in mapping.items():
        if col not in present and col != DEFAULT_COLUMNS.get(fld):
            raise CatalogError(f"{path}: column {col!r} (mapped to {fld}) is not in the file; "
                               f"columns: {_column_names(present)}")
    if mapping["title"] not in present:
        raise CatalogError(f"{path}: no title column {mapping['title']!r} (columns: "
                           f"{_column_names(present) or 'none'}); map one with --columns title=NAME")


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


def _titled_rows(path: Path, titles: pd.Series, report: LoadReport) -> np.ndarray:
    """Rows with a title; the others are reported with their line numbers."""
    has_title = titles.str.strip().ne("").to_numpy()
    if not has_title.all():
        lines = _record_lines(path)
        for r in np.flatnonzero(~has_title):
            line = lines[r] if r < len(lines) else r + 2
            report.skipped_rows.append((int(line), "no title"))
    return np.flatnonzero(has_title)


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


def read_catalog(path: str | Path, columns: dict[str, str] | None = None) -> tuple[Catalog, LoadReport]:
    """Read and preprocess a catalog CSV. Raises CatalogError with a one-line message."""
    path = Path(path)
    mapping = dict(columns or DEFAULT_COLUMNS)
    frame = _read_frame(path)
    report = LoadReport(path=str(path), rows_read=len(frame))
    present = list(frame.columns)
    _check_columns(path, mapping, present)

    def column(fld: str) -> pd.Series:
        col = mapping[fld]
        return frame[col] if col in present else pd.Series([""] * len(frame), dtype=object)

    prices = _filled_prices(column("price"), report)
    ids = _ids(frame, mapping["id"], report)
    rows = _last_of_each_id(_titled_rows(path, column("title"), report), ids, report)
    taken = {fld: column(fld).to_numpy()[rows].tolist() for fld in TEXT_FIELDS}
    report.attribute_columns = [c for c in present if c not in set(mapping.values())]
    unique = {raw: parse_breadcrumb(raw) for raw in set(taken["categories"])}
    catalog = assemble(
        ids=[ids[r] for r in rows], texts=taken,
        images=[parse_images(v) for v in column("images").to_numpy()[rows].tolist()],
        breadcrumbs=[unique[raw] for raw in taken["categories"]],
        price=prices[rows].astype(np.float64),
        attributes={c: frame[c].to_numpy()[rows].tolist() for c in report.attribute_columns},
        source_rows=rows.astype(np.int64), median_price=report.median_price)
    return catalog, report
