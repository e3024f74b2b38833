"""Copies of a CSV catalog in every format the index service reads (no tests here).

`write_variants(source, directory)` writes the comma-separated original's rows as semicolon-, tab-
and pipe-separated CSV, JSON Lines and Parquet, the way other shops export them: in JSON Lines and
Parquet the breadcrumb and the image URLs are lists and the price a number (null when the
original has none). Each copy holds the same products as the original.
"""
from __future__ import annotations

import ast
import csv
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DELIMITED = {"semicolon": ";", "tab": "\t", "pipe": "|"}
LIST_COLUMNS = ("categories", "images")


def read_rows(source: Path) -> tuple[list[str], list[list[str]]]:
    with open(source, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _listed(text: str) -> list[str]:
    return [str(v) for v in ast.literal_eval(text)] if text.strip() else []


def _number(text: str) -> float | None:
    cleaned = re.sub(r"[^0-9.]", "", text)
    return float(cleaned) if cleaned else None


def typed_records(header: list[str], rows: list[list[str]]) -> list[dict]:
    """The rows as JSON objects: lists for categories and images, a number (or null) for price."""
    records = []
    for row in rows:
        record: dict = dict(zip(header, row))
        for name in LIST_COLUMNS:
            if name in record:
                record[name] = _listed(record[name])
        if "price" in record:
            record["price"] = _number(record["price"])
        records.append(record)
    return records


def write_delimited(path: Path, header: list[str], rows: list[list[str]], delimiter: str) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    return path


def write_parquet(path: Path, header: list[str], records: list[dict]) -> Path:
    types = {name: pa.list_(pa.string()) for name in LIST_COLUMNS} | {"price": pa.float64()}
    schema = pa.schema([(name, types.get(name, pa.string())) for name in header])
    pq.write_table(pa.Table.from_pylist(records, schema=schema), path)
    return path


def write_variants(source: Path, directory: Path) -> dict[str, Path]:
    """name -> path of each copy: "comma" (the original's rows rewritten), "semicolon", "tab",
    "pipe", "jsonl", "parquet"."""
    directory.mkdir(parents=True, exist_ok=True)
    header, rows = read_rows(source)
    paths = {"comma": write_delimited(directory / "catalog-comma.csv", header, rows, ",")}
    for name, delimiter in DELIMITED.items():
        suffix = ".tsv" if name == "tab" else ".csv"
        paths[name] = write_delimited(directory / f"catalog-{name}{suffix}", header, rows, delimiter)
    records = typed_records(header, rows)
    paths["jsonl"] = write_jsonl(directory / "catalog.jsonl", records)
    paths["parquet"] = write_parquet(directory / "catalog.parquet", header, records)
    return paths
