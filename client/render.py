"""Text for people (tables cut to the terminal's width) and JSON for programs, from types.py
values."""
from __future__ import annotations

import dataclasses
import json
import shutil
from typing import Any, Sequence

from .types import EmbedResult, Hit, Product, SearchResult

ELLIPSIS = "…"


def to_json(value: Any) -> str:
    """JSON of a dataclass (nested ones, tuples and mappings included), or of lists of them."""
    return json.dumps(_plain(value), indent=2, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def terminal_width() -> int:
    return shutil.get_terminal_size(fallback=(100, 24)).columns


def cut(text: str, width: int) -> str:
    """`text` on one line, at most `width` characters (an ellipsis marks a cut)."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    return text[:max(0, width - 1)] + ELLIPSIS if width > 0 else ""


def score_text(score: float) -> str:
    """4 decimals; 5 below 0.1, where hybrid's fused scores (about 1/61) live."""
    return f"{score:.4f}" if abs(score) >= 0.1 else f"{score:.5f}"


def price_text(price: float | None) -> str:
    return "-" if price is None else f"{price:,.2f}"


# The flexible column (the title) keeps at least this many characters while the squeezable ones
# (brand, category) can give way, down to _SQUEEZED_MIN each.
_FLEXIBLE_MIN, _SQUEEZED_MIN = 30, 10


def _table(headers: Sequence[str], rows: list[list[str]], *, flexible: int, right: set[int],
           width: int, squeeze: Sequence[int] = ()) -> str:
    """Columns as wide as their widest cell; column `flexible` takes what the width leaves, and
    the `squeeze` columns narrow (from the last) so that it keeps _FLEXIBLE_MIN."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    wanted = min(widths[flexible], _FLEXIBLE_MIN)
    for i in reversed(squeeze):
        fixed = sum(w for j, w in enumerate(widths) if j != flexible) + 2 * (len(headers) - 1)
        short = wanted - (width - fixed)
        if short > 0:
            widths[i] = max(_SQUEEZED_MIN, len(headers[i]), widths[i] - short)
    fixed = sum(w for i, w in enumerate(widths) if i != flexible) + 2 * (len(headers) - 1)
    widths[flexible] = max(len(headers[flexible]), min(widths[flexible], width - fixed, 200))

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            cell = cut(cell, widths[i])
            out.append(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


_BRAND_MAX, _CATEGORY_MAX = 18, 22


def hits_table(hits: Sequence[Hit], width: int | None = None) -> str:
    """rank, title (cut to fit `width`, the terminal's by default), brand, short category, price,
    score."""
    rows = [[str(h.rank), h.product.title, cut(h.product.brand, _BRAND_MAX),
             cut(h.product.category, _CATEGORY_MAX), price_text(h.product.price),
             score_text(h.score)] for h in hits]
    return _table(["#", "title", "brand", "category", "price", "score"], rows, flexible=1,
                  right={0, 4, 5}, width=width or terminal_width(), squeeze=(2, 3))


def products_table(products: Sequence[Product], width: int | None = None) -> str:
    rows = [[p.id, p.title, cut(p.brand, _BRAND_MAX), cut(p.category, _CATEGORY_MAX),
             price_text(p.price)] for p in products]
    return _table(["id", "title", "brand", "category", "price"], rows, flexible=1, right={4},
                  width=width or terminal_width(), squeeze=(2, 3))


def search_text(result: SearchResult, what: str, width: int | None = None) -> str:
    if not result.hits:
        return f"no hits for {what}"
    t = result.timing
    cached = ", query vector cached" if result.query_vector_cached else ""
    head = (f"{len(result.hits)} hits for {what} ({t.total_us / 1000:.1f} ms in the index service: "
            f"embed {t.embed_us / 1000:.1f}, search {t.search_us / 1000:.1f}{cached})")
    return head + "\n" + hits_table(result.hits, width)


def product_text(p: Product, width: int | None = None) -> str:
    fields = [("id", p.id), ("title", p.title), ("brand", p.brand), ("price", price_text(p.price)),
              ("category", p.category), ("categories", " > ".join(p.categories)),
              ("material", p.material), ("color", p.color), ("images", " ".join(p.images)),
              *((f"[{k}]", v) for k, v in sorted(p.attributes.items())),
              ("description", p.description)]
    return key_values(fields, width)


def key_values(pairs: Sequence[tuple[str, Any]], width: int | None = None) -> str:
    pad = max(len(k) for k, _ in pairs)
    room = max(20, (width or terminal_width()) - pad - 2)
    return "\n".join(f"{k.ljust(pad)}  {cut(str(v), room)}" for k, v in pairs)


def dataclass_text(value: Any, width: int | None = None) -> str:
    return key_values([(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)], width)


def embed_text(texts: Sequence[str], result: EmbedResult, width: int | None = None,
               preview: int = 6) -> str:
    lines = [f"model {result.model_name}, {result.total_tokens} tokens, "
             f"{result.timing.total_us / 1000:.1f} ms in the embedder"]
    room = (width or terminal_width())
    for text, e in zip(texts, result.embeddings):
        head = ", ".join(f"{v:+.4f}" for v in e.values[:preview])
        truncated = ", truncated" if e.truncated else ""
        lines.append(cut(f"{len(e.values)}-d [{head}, ...] ({e.token_count} tokens{truncated}) "
                         f"{text!r}", room))
    return "\n".join(lines)
