"""What one product may be, wherever it comes from: a write (product_writes.py refuses a product
over a limit) or a catalog file (rows_within_limits: the reader skips the row and reports it with
its line, as it does a row without a title).

    kept = rows_within_limits(rows, ids, texts, breadcrumb, images, attributes, prices, skip)
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from client.generated.recsys.v1 import index_pb2

MAX_ID_CHARS = 1024
# One product AS RETURNED (GetProduct, a hit, a ListProducts entry: the Product message the service
# sends, with its output-only `category` and its price), so that a page of 1,000 of them
# (ListProducts, Search with k=1000) fits the 64 MiB message limit (the server's
# --max-message-bytes default and the client's, client/channels.py): a hit or page entry adds at
# most 16 bytes (field tags, lengths, score, rank), a reply a few dozen, and
# 1,000 x (65,536 + 16) + 64 = 65,552,064 < 67,108,864 bytes.
MAX_PRODUCT_BYTES = 64 * 1024
# The FAISS store keeps each attribute name as a catalog-wide column (catalog.py): a name is at
# most this long, and a write may not take the catalog over this many distinct names. A catalog
# file's columns are the file's: these two bound writes only.
MAX_ATTRIBUTE_KEY_CHARS = 256
MAX_ATTRIBUTE_NAMES = 1000

# Bytes a string field may add to a Product message beyond its characters' UTF-8 (tag 1-2 bytes,
# length 1-3 bytes), per field, list item or map entry (an entry nests a key and a value: 11).
_FIELD_OVERHEAD = 20


def size_bound(chars: np.ndarray, fields: int) -> np.ndarray:
    """An upper bound of each product's size as returned, from its characters in all fields (the
    breadcrumb counted twice: `category` repeats its last level; attribute names included) and the
    number of string fields and attribute columns. A character is at most 4 bytes in UTF-8, and a
    list item (an image URL, a breadcrumb level) has at least 1 character and 5 bytes of overhead,
    so 9 bytes a character covers both; the id, `category` and the price fit in 128."""
    return 9 * chars + _FIELD_OVERHEAD * fields + 128


def returned_size(fields: Mapping) -> int:
    """The exact size of a Product message built from `fields` (Catalog.product's form)."""
    return index_pb2.Product(**fields).ByteSize()


def _lengths(values: Sequence[str]) -> np.ndarray:
    return np.fromiter(map(len, values), dtype=np.int64, count=len(values))


def rows_within_limits(rows: np.ndarray, ids: Sequence[str], texts: Mapping[str, Sequence[str]],
                       breadcrumb: Callable[[int], list[str]], images: Callable[[int], list[str]],
                       attributes: Mapping[str, Sequence[str]], prices: np.ndarray,
                       skip: Callable[[int, str], None]) -> np.ndarray:
    """The rows (indices into the file's table) whose product fits: an id of at most MAX_ID_CHARS
    characters, at most MAX_PRODUCT_BYTES as returned. `texts`: title, brand, description,
    material, color and the raw categories and images strings, per row of the file; `breadcrumb`
    and `images`: a row's parsed lists; skip(row, reason) is told of every row left out. Only rows
    whose size_bound exceeds the limit are measured exactly."""
    id_chars = _lengths(ids)
    chars = id_chars + 2 * _lengths(texts["categories"])
    for name, values in texts.items():
        if name != "categories":
            chars += _lengths(values)
    for name, values in attributes.items():
        chars += _lengths(values) + len(name)
    bound = size_bound(chars, len(texts) + len(attributes))
    kept = []
    for r in rows:
        if id_chars[r] > MAX_ID_CHARS:
            skip(r, f"id of {id_chars[r]} characters, over {MAX_ID_CHARS}")
            continue
        if bound[r] > MAX_PRODUCT_BYTES:
            size = returned_size(_product_fields(r, ids, texts, breadcrumb, images, attributes,
                                                 prices))
            if size > MAX_PRODUCT_BYTES:
                skip(r, f"{size} bytes as returned, over {MAX_PRODUCT_BYTES} per product")
                continue
        kept.append(r)
    return np.asarray(kept, dtype=rows.dtype)


def _product_fields(r: int, ids, texts, breadcrumb, images, attributes, prices) -> dict:
    """Row r as Catalog.product would return it."""
    levels = breadcrumb(r)
    return {"id": ids[r], "title": texts["title"][r], "brand": texts["brand"][r],
            "description": texts["description"][r], "price": float(prices[r]),
            "categories": levels, "category": levels[-1] if levels else "",
            "material": texts["material"][r], "color": texts["color"][r], "images": images(r),
            "attributes": {name: v for name, values in attributes.items() if (v := values[r])}}
