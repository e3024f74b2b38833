"""Catalog files -> one table of strings (RawTable), whatever the format; catalog_reader.py
applies the recipe to it. The format is chosen by the file's extension (`format_of`).

Modules: base.py (CatalogError, RawTable, --csv-delimiter values, how non-string values become
text), delimited.py (CSV: delimiter detection, record line numbers), jsonl.py (JSON Lines),
parquet.py (Parquet, through pyarrow).

    table = read_table(Path("products.jsonl"), csv_delimiter="auto",
                       list_columns=frozenset({"categories", "images"}))
    table.frame          # pandas DataFrame of str, one column per file column
    table.positions()    # each record's line (row, for Parquet), for skipped-row reports
"""
from __future__ import annotations

from pathlib import Path

from .base import (DELIMITER_OPTIONS, CatalogError, RawTable, delimiter_name,
                   delimiter_option)

# extension -> format
EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".parquet": "parquet", ".pq": "parquet"}
FORMAT_NAMES = {"csv": "CSV", "jsonl": "JSON Lines", "parquet": "Parquet"}

__all__ = ["CatalogError", "RawTable", "DELIMITER_OPTIONS", "EXTENSIONS", "FORMAT_NAMES",
           "delimiter_name", "delimiter_option", "format_of", "identity", "read_table"]


def format_of(path: Path) -> str:
    """"csv", "jsonl" or "parquet", from the extension; CatalogError for any other."""
    kind = EXTENSIONS.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(f"{ext} ({FORMAT_NAMES[k]})" for ext, k in EXTENSIONS.items())
        raise CatalogError(f"{path}: unknown catalog format {path.suffix or '(no extension)'!r}; "
                           f"the extension says the format: {known}")
    return kind


def identity(path: Path, csv_delimiter: str = "auto") -> tuple[str, str]:
    """(format, delimiter) a read of `path` would use (delimiter "" unless CSV): what, with the
    file's sha256 and the column mapping, says whether a build is still the file's."""
    kind = format_of(path)
    if kind != "csv":
        return kind, ""
    from .delimited import effective_delimiter
    return kind, effective_delimiter(path, csv_delimiter)


def read_table(path: Path, *, csv_delimiter: str = "auto",
               list_columns: frozenset[str] = frozenset()) -> RawTable:
    """The catalog file at `path` as a RawTable. `csv_delimiter`: "auto" or the delimiter;
    `list_columns`: the columns whose list values (JSON Lines, Parquet) are lists of items
    (categories, images). Raises CatalogError with a one-line message."""
    if not path.is_file():
        raise CatalogError(f"{path}: no such file")
    kind = format_of(path)
    if kind == "jsonl":
        from .jsonl import read_jsonl
        return read_jsonl(path, list_columns)
    if kind == "parquet":
        from .parquet import read_parquet  # pyarrow is loaded only for Parquet files
        return read_parquet(path, list_columns)
    from .delimited import read_delimited
    return read_delimited(path, csv_delimiter)
