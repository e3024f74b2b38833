"""What every catalog file reader shares: the error, the table it returns, and how values that are
not strings (JSON Lines, Parquet) become the strings the recipe reads."""
from __future__ import annotations

import datetime
import decimal
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

# --csv-delimiter: what may be written -> the delimiter ("auto": detect it from the file).
DELIMITER_OPTIONS = {"auto": "auto", ",": ",", "comma": ",", ";": ";", "semicolon": ";",
                     "\t": "\t", "\\t": "\t", "tab": "\t", "|": "|", "pipe": "|"}
DELIMITERS = (",", ";", "\t", "|")  # the candidates, in the order that breaks ties


class CatalogError(Exception):
    """A catalog that cannot be used; the message is one line naming the file and the problem."""


def delimiter_option(text: str) -> str | None:
    """--csv-delimiter's value -> "auto" or the delimiter; None when it names none."""
    if text in DELIMITER_OPTIONS:
        return DELIMITER_OPTIONS[text]
    return DELIMITER_OPTIONS.get(text.strip().lower())


def delimiter_name(delimiter: str) -> str:
    """For messages and reports: "','", "';'", "tab", "'|'"."""
    return "tab" if delimiter == "\t" else repr(delimiter)


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class RawTable:
    """A catalog file as a table of strings, whatever its format: one column per column (or key)
    of the file, in the file's order, every value a str ("" where the file has none)."""
    frame: pd.DataFrame
    # Where each record starts (its line, or its row for Parquet), computed when asked for:
    # the reports of skipped rows need them, a clean file never does.
    positions: Callable[[], Sequence[int]]
    catalog_format: str              # "csv", "jsonl" or "parquet"
    position_unit: str = "line"      # what `positions` counts: "line" or "row"
    csv_delimiter: str = ""          # CSV: the delimiter the file was read with
    delimiter_source: str = ""       # CSV: "detected" or "--csv-delimiter"


def string_frame(columns: dict[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(values, dtype=str) for name, values in columns.items()})


def cell_text(value) -> str:
    """A JSON or Parquet value as text: strings as they are; null, NaN and infinities empty;
    numbers in plain decimal notation (12.5 -> "12.5", 1e20 -> "100000000000000000000", so the
    recipe's price parsing applies); booleans "true"/"false"; dates ISO 8601; lists and objects
    as JSON text."""
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return np.format_float_positional(value, trim="-") if math.isfinite(value) else ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f") if value.is_finite() else ""
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def list_text(value) -> str:
    """A value of the categories or images column: a list becomes a Python list literal of its
    items as text (the form the recipe parses, e.g. "['Home', 'Lamps']"; empty items dropped,
    an empty list is ""); anything else as `cell_text`."""
    if not isinstance(value, (list, tuple)):
        return cell_text(value)
    items = [text for text in (cell_text(v) for v in value) if text.strip()]
    return str(items) if items else ""
