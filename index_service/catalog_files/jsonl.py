"""JSON Lines (.jsonl, .ndjson) -> RawTable: one JSON object per line.

Blank lines are skipped; a line that is not a JSON object stops the read with its line number.
Columns: every key of every object, in the order first seen; a key an object lacks is empty
there. Values become text as base.cell_text says, and a list under one of `list_columns` (the
categories and images columns) becomes a Python list literal (base.list_text).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .base import CatalogError, RawTable, cell_text, list_text, string_frame

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number",
          bool: "a boolean", type(None): "null"}


def _parse_line(path: Path, number: int, line: str) -> dict:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        if number == 1 and line.lstrip().startswith("["):
            value = []  # an array spread over lines: said below
        else:
            raise CatalogError(f"{path}: not valid JSON Lines: line {number}: {exc.msg} (column "
                               f"{exc.colno}); each line must hold one whole JSON object") from None
    except RecursionError:
        raise CatalogError(f"{path}: not valid JSON Lines: line {number} is nested too deeply") from None
    if isinstance(value, list) and number == 1:
        raise CatalogError(f"{path}: not JSON Lines: the file starts with a JSON array; write one "
                           "object per line (e.g. jq -c '.[]' FILE.json > FILE.jsonl)")
    if not isinstance(value, dict):
        raise CatalogError(f"{path}: not valid JSON Lines: line {number} is "
                           f"{_KINDS.get(type(value), 'not an object')}, not a JSON object")
    if _SURROGATE_ESCAPE.search(line):  # a \udXXX escape without its pair is no text
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise CatalogError(f"{path}: not valid JSON Lines: line {number} holds a \\u escape "
                               "of half a surrogate pair, which is not text") from None
    return value


def read_jsonl(path: Path, list_columns: frozenset[str] = frozenset()) -> RawTable:
    """The JSON Lines file at `path`. Raises CatalogError."""
    columns: dict[str, list[str]] = {}
    lines: list[int] = []
    try:
        with open(path, encoding="utf-8-sig") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                record = _parse_line(path, number, line)
                for key, value in record.items():
                    texts = columns.setdefault(key, [""] * len(lines))
                    texts.append(list_text(value) if key in list_columns else cell_text(value))
                lines.append(number)
                for texts in columns.values():
                    if len(texts) < len(lines):
                        texts.append("")
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not a JSON Lines file: not UTF-8 text ({exc.reason} at byte "
                           f"{exc.start})") from None
    if not lines:
        raise CatalogError(f"{path}: not a JSON Lines file: it holds no JSON object (empty)")
    return RawTable(frame=string_frame(columns), positions=lambda: lines, catalog_format="jsonl")
