"""The CLI's write commands: `recsys upsert FILE` and `recsys delete ID...` (a write token).

upsert reads products from JSON Lines (one product object a line) or a JSON array, such as
`recsys list --json` prints, so a catalog exported from one index loads into another. Fields are
Product's (`category` is the server's, and ignored); `id` and `title` are required. Every line is
read and checked before anything is sent; then batches of --batch-size go one after the other,
each all or nothing. A batch the server refuses stops the command, saying how many products went
in before it and which lines the refused batch held.

    recsys --token-file secrets/index_token upsert new_products.jsonl
    recsys --token-file secrets/index_token delete sku-1 sku-2
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from . import render
from .commands import whole
from .errors import InvalidArgumentError, RecsysError
from .recsys_client import RecsysClient
from .types import Product

BATCH = 500  # the index service takes up to --max-batch-products (1,000 by default) a call
_batch_size = whole(1, 1000)
_FIELDS = {f.name for f in dataclasses.fields(Product)}


def _product(obj, where: str) -> Product:
    if not isinstance(obj, dict):
        raise InvalidArgumentError(f"{where}: expected a product object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - _FIELDS)
    if unknown:
        raise InvalidArgumentError(f"{where}: unknown fields {', '.join(unknown)}; a product "
                                   f"has {', '.join(sorted(_FIELDS))}")
    if not isinstance(obj.get("id"), str) or not isinstance(obj.get("title"), str):
        raise InvalidArgumentError(f"{where}: `id` and `title` must be given, as strings")
    fields = {k: v for k, v in obj.items() if k != "category"}
    for name in ("categories", "images"):
        if name in fields:
            fields[name] = tuple(fields[name] or ())
    try:
        return Product(**fields)
    except TypeError as exc:
        raise InvalidArgumentError(f"{where}: {exc}") from None


def read_products(text: str, name: str) -> list[tuple[int, Product]]:
    """(line number, product) of each product in JSON Lines or a JSON array."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(f"{name}: not valid JSON: {exc}") from None
        return [(i + 1, _product(obj, f"{name}: item {i + 1}")) for i, obj in enumerate(items)]
    products = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(f"{name}: line {number}: not valid JSON: {exc.msg}") from None
        products.append((number, _product(obj, f"{name}: line {number}")))
    return products


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc}") from None


def run_upsert(args: argparse.Namespace, client: RecsysClient) -> None:
    text, name = _read(args.file), "stdin" if args.file == "-" else args.file
    products = read_products(text, name)
    if not products:
        raise InvalidArgumentError(f"{name}: no products in it")
    unit = "items" if text.lstrip().startswith("[") else "lines"
    done, result = 0, None
    for start in range(0, len(products), args.batch_size):
        batch = products[start:start + args.batch_size]
        try:
            result = client.upsert([p for _, p in batch])
        except RecsysError as exc:
            exc.message = (f"{exc.message} (in the batch of {unit} {batch[0][0]} to "
                           f"{batch[-1][0]} of {name}; {done} products were upserted before it)")
            raise
        done += len(batch)
    summary = {"upserted": done, "product_count": result.product_count,
               "sequence": result.sequence}
    print(render.to_json(summary) if args.json else
          f"upserted {done} products; the catalog holds {result.product_count}")


def run_delete(args: argparse.Namespace, client: RecsysClient) -> None:
    ids = list(args.product_id)
    deleted, not_found, result = 0, [], None
    for start in range(0, len(ids), args.batch_size):
        result = client.delete(ids[start:start + args.batch_size])
        deleted += result.deleted
        not_found += result.not_found
    summary = {"deleted": deleted, "not_found": not_found,
               "product_count": result.product_count, "sequence": result.sequence}
    missing = f"; not found: {', '.join(not_found)}" if not_found else ""
    print(render.to_json(summary) if args.json else
          f"deleted {deleted} products{missing}; the catalog holds {result.product_count}")


def register(add) -> None:
    p = add("upsert", help="add or replace products from a JSON Lines file (or a JSON array, "
                           "as `list --json` prints); needs a write token", run=run_upsert)
    p.add_argument("file", help="the products: a path, or - for stdin")
    p.add_argument("--batch-size", type=_batch_size, default=BATCH,
                   help=f"products a call (default {BATCH}; the service's "
                        "--max-batch-products is the most)")
    p = add("delete", help="remove products by id; needs a write token", run=run_delete)
    p.add_argument("product_id", nargs="+", help="the ids to remove")
    p.add_argument("--batch-size", type=_batch_size, default=BATCH,
                   help=f"ids a call (default {BATCH})")
