"""Parquet (.parquet, .pq) -> RawTable, through pyarrow.

Every column is read; string columns as they are (null -> ""), other columns value by value as
base.cell_text says (numbers in plain decimal notation, booleans "true"/"false", timestamps
ISO 8601, lists and structs as JSON text), and a list column among `list_columns` (the
categories and images columns) as a Python list literal (base.list_text). Skipped rows are
reported by row number (the first data row is row 1).
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .base import CatalogError, RawTable, cell_text, first_line, list_text, string_frame


def _texts(column: pa.ChunkedArray, as_list: bool) -> list[str]:
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pc.fill_null(column, "").to_pylist()
    convert = list_text if as_list else cell_text
    return [convert(value) for value in column.to_pylist()]


def read_parquet(path: Path, list_columns: frozenset[str] = frozenset()) -> RawTable:
    """The Parquet file at `path`. Raises CatalogError."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise CatalogError(f"{path}: not a readable Parquet file: {first_line(exc)}") from None
    names = table.column_names
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CatalogError(f"{path}: Parquet columns named more than once: {', '.join(repeated)}")
    try:
        columns = {name: _texts(table.column(name), name in list_columns) for name in names}
    except (pa.ArrowException, ValueError) as exc:  # e.g. a type with no Python value
        raise CatalogError(f"{path}: cannot read the Parquet values: {first_line(exc)}") from None
    rows = table.num_rows
    return RawTable(frame=string_frame(columns), positions=lambda: range(1, rows + 1),
                    catalog_format="parquet", position_unit="row")
