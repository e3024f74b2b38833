"""The CLI's built-in commands: search, similar, get, list, stats, embed, model-info."""
from __future__ import annotations

import argparse
import itertools

from . import render
from .errors import InvalidArgumentError
from .recsys_client import RecsysClient
from .types import FUSIONS, MODES, HybridParams, SearchParams


def whole(minimum: int, maximum: int | None = None):
    """argparse type: a whole number >= minimum (and <= maximum, when given)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, not {value}")
        return value
    return parse


_k, _offset = whole(1), whole(0)


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, not {text}")
    return value


def _filter_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters (exact; all given must hold)")
    group.add_argument("--category", action="append", metavar="C",
                       help="a level of the product's category breadcrumb "
                            "(repeat for any of several)")
    group.add_argument("--brand", action="append", metavar="B",
                       help="brand (repeat for any of several)")
    group.add_argument("--min-price", type=float, metavar="X", help="price >= X")
    group.add_argument("--max-price", type=float, metavar="Y", help="price <= Y")
    parser.add_argument("-k", type=_k, default=10, help="hits to return (default 10)")
    parser.add_argument("--offset", type=_offset, default=0, help="skip this many hits first")
    parser.add_argument("--min-score", type=float, metavar="S", help="drop hits scoring below S")
    group = parser.add_argument_group("vector index (this call only; default: the service's flags)")
    group.add_argument("--hnsw-ef", type=_k, metavar="N", help="HNSW candidates explored (1-4096)")
    group.add_argument("--ivf-nprobe", type=_k, metavar="N", help="IVF clusters visited")
    group.add_argument("--exact", action="store_true", help="scan every vector (recall 1, slower)")


def _filters(args: argparse.Namespace) -> dict:
    params = (SearchParams(args.hnsw_ef, args.ivf_nprobe, args.exact)
              if args.hnsw_ef or args.ivf_nprobe or args.exact else None)
    return dict(categories=args.category, brands=args.brand, min_price=args.min_price,
                max_price=args.max_price, min_score=args.min_score, offset=args.offset,
                params=params)


def _print(args: argparse.Namespace, value, text: str) -> None:
    print(render.to_json(value) if args.json else text)


def _hybrid(args: argparse.Namespace) -> HybridParams | None:
    """--fusion / --alpha / --candidates, which only hybrid search takes; None when none is given."""
    given = [f"--{name}" for name in ("fusion", "alpha", "candidates")
             if getattr(args, name) is not None]
    if not given:
        return None
    if args.mode != "hybrid":
        verb = "applies" if len(given) == 1 else "apply"
        raise InvalidArgumentError(f"{', '.join(given)} {verb} to --mode hybrid only, not "
                                   f"--mode {args.mode}")
    return HybridParams(fusion=args.fusion, alpha=args.alpha, candidates=args.candidates)


def run_search(args: argparse.Namespace, client: RecsysClient) -> None:
    hybrid = _hybrid(args)
    result = client.search(args.query, k=args.k, mode=args.mode, hybrid=hybrid, **_filters(args))
    how = args.mode
    if hybrid is not None and hybrid.fusion:
        how += f", {hybrid.fusion}" + (f" alpha {hybrid.alpha:g}" if hybrid.alpha is not None else "")
    _print(args, result, render.search_text(result, f"{args.query!r} ({how})"))


def run_similar(args: argparse.Namespace, client: RecsysClient) -> None:
    ids = args.product_id if len(args.product_id) > 1 else args.product_id[0]
    result = client.similar(ids, k=args.k, **_filters(args))
    _print(args, result, render.search_text(result, f"products like {', '.join(args.product_id)}"))


def run_get(args: argparse.Namespace, client: RecsysClient) -> None:
    product = client.get(args.product_id)
    _print(args, product, render.product_text(product))


def run_list(args: argparse.Namespace, client: RecsysClient) -> None:
    products = list(itertools.islice(client.list_products(page_size=min(args.limit, 1000)),
                                     args.limit))
    _print(args, products, render.products_table(products))


def run_stats(args: argparse.Namespace, client: RecsysClient) -> None:
    stats = client.stats()
    _print(args, stats, render.dataclass_text(stats))


def run_embed(args: argparse.Namespace, client: RecsysClient) -> None:
    result = client.embed(args.texts)
    _print(args, result, render.embed_text(args.texts, result))


def run_model_info(args: argparse.Namespace, client: RecsysClient) -> None:
    info = client.model_info()
    _print(args, info, render.dataclass_text(info))


def register(add) -> None:
    p = add("search", help="products matching a text query", run=run_search)
    p.add_argument("query", help="what to look for, e.g. \"small folding computer desk\"")
    p.add_argument("--mode", choices=MODES, default="semantic",
                   help="ranking: semantic (embeddings, default), lexical (TF-IDF), hybrid (both, "
                        "fused)")
    group = p.add_argument_group("hybrid fusion (--mode hybrid; default: the service's flags)")
    group.add_argument("--fusion", choices=FUSIONS,
                       help="rrf (reciprocal rank fusion) or weighted (alpha x semantic + "
                            "(1 - alpha) x lexical, min-max normalized scores)")
    group.add_argument("--alpha", type=_alpha, metavar="A",
                       help="weighted fusion's semantic weight, 0 to 1")
    group.add_argument("--candidates", type=_k, metavar="N",
                       help="rows taken from each ranking (1 to 100000)")
    _filter_options(p)

    p = add("similar", help="products like a given one, or like several (a basket); never "
                            "those themselves", run=run_similar)
    p.add_argument("product_id", nargs="+", help="one id, or several: products like all of them")
    _filter_options(p)

    p = add("get", help="one product by id", run=run_get)
    p.add_argument("product_id")

    p = add("list", help="the catalog's first products, in catalog order", run=run_list)
    p.add_argument("--limit", type=_k, default=20, help="products to show (default 20)")

    add("stats", help="what the index service serves", run=run_stats)

    p = add("embed", help="vectors of texts, from the embedder service", run=run_embed)
    p.add_argument("texts", nargs="+", metavar="TEXT")

    add("model-info", help="the embedder's model and limits", run=run_model_info)
