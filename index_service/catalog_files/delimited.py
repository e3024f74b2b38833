"""Delimited text (CSV) -> RawTable: the delimiter detected or forced, quotes as in RFC 4180.

Detection (`sniff`): each candidate (',', ';', tab, '|') splits the header and the first
SAMPLE_RECORDS records of the file with the csv module, so quotes are respected: a delimiter
inside a quoted field counts for nothing. A candidate must split the header into two columns or
more; among those, the one under which the most records have the header's number of fields
wins (a description full of semicolons in a comma file does not split its header), then the one
that makes more columns, then the order above. When none splits the header (a one-column file),
',' is used.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from .base import DELIMITERS, CatalogError, RawTable, delimiter_name, first_line

SAMPLE_BYTES = 64 * 1024  # below csv's 128 KiB field limit
SAMPLE_RECORDS = 100


def _records(text: str, delimiter: str, limit: int) -> list[list[str]]:
    """The first `limit` non-blank records of `text` (fewer when a record is malformed)."""
    records: list[list[str]] = []
    try:
        for record in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if record:
                records.append(record)
                if len(records) >= limit:
                    break
    except csv.Error:
        pass
    return records


def sniff(text: str, complete: bool = True) -> str:
    """The delimiter of the delimited text `text` (see the module docstring). `complete`: `text`
    is the whole file (else its last record may be cut, and is not counted)."""
    best, best_score = ",", None
    for delimiter in DELIMITERS:
        records = _records(text, delimiter, SAMPLE_RECORDS + 2)
        if not complete and len(records) > 1:
            records = records[:-1]
        if not records or len(records[0]) < 2:
            continue
        width, rows = len(records[0]), records[1:SAMPLE_RECORDS + 1]
        fit = sum(len(row) == width for row in rows) / len(rows) if rows else 1.0
        if best_score is None or (fit, width) > best_score:
            best, best_score = delimiter, (fit, width)
    return best


def detect_delimiter(path: Path) -> str:
    """The delimiter of the file at `path`, from its first SAMPLE_BYTES bytes (bad bytes are
    replaced here: reading the file reports them)."""
    with open(path, "rb") as f:
        head = f.read(SAMPLE_BYTES + 1)
    text = head[:SAMPLE_BYTES].decode("utf-8-sig", errors="replace")
    return sniff(text, complete=len(head) <= SAMPLE_BYTES)


def effective_delimiter(path: Path, option: str) -> str:
    """The delimiter a read with --csv-delimiter `option` ("auto" or a delimiter) uses."""
    return detect_delimiter(path) if option == "auto" else option


def _record_lines(path: Path, delimiter: str) -> list[int]:
    """Starting line number of every non-blank data record (header = line 1)."""
    starts = []
    limit = csv.field_size_limit(2**31 - 1)  # pandas read fields of any size (csv: 128 KiB)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            next(reader, None)
            previous_end = reader.line_num
            for record in reader:
                if record:  # pandas skips only truly blank lines
                    starts.append(previous_end + 1)
                previous_end = reader.line_num
    finally:
        csv.field_size_limit(limit)
    return starts


def _invalid(path: Path, delimiter: str, how: str, problem: str) -> CatalogError:
    return CatalogError(f"{path}: not a valid CSV file with delimiter {delimiter_name(delimiter)} "
                        f"({how}): {problem}; if the file uses another delimiter, set it with "
                        "--csv-delimiter (',', ';', tab or '|')")


def read_delimited(path: Path, option: str = "auto") -> RawTable:
    """The CSV file at `path`, read with --csv-delimiter `option`. Raises CatalogError."""
    delimiter = effective_delimiter(path, option)
    how = "detected" if option == "auto" else "--csv-delimiter"
    try:
        frame = pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False,
                            encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise CatalogError(f"{path}: not a CSV file: it is empty (no header row)") from None
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not a CSV file: not UTF-8 text ({exc.reason} at byte "
                           f"{exc.start})") from None
    except (pd.errors.ParserError, ValueError, csv.Error) as exc:
        raise _invalid(path, delimiter, how, first_line(exc)) from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas made the first field an index
        raise _invalid(path, delimiter, how, f"the first data row has more fields than the "
                                             f"header's {len(frame.columns)}")
    return RawTable(frame=frame, positions=lambda: _record_lines(path, delimiter),
                    catalog_format="csv", csv_delimiter=delimiter, delimiter_source=how)
