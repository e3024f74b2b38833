"""UpsertProducts / DeleteProducts above the store: validate, embed, then hand the batch over.

A batch is all or nothing: every product is validated first (INVALID_ARGUMENT names the product
and nothing is applied), then embedded through the embedder (UNAVAILABLE: nothing applied), then
given to the store (store.Store.upsert / delete), which acknowledges it once durable: the FAISS
store's write-ahead log (writes.py), or Milvus's own log.

What a write may put in the catalog is bounded (product_limits.py): one product as it will be
returned (MAX_PRODUCT_BYTES, so that 1,000 fit one reply), attribute names (MAX_ATTRIBUTE_KEY_CHARS, none
empty) and, where the store keeps attributes as catalog-wide columns (FAISS: checked by its
writer under the write lock, writes.py), the distinct names the catalog may hold
(MAX_ATTRIBUTE_NAMES).
"""
from __future__ import annotations

import math
import unicodedata

import numpy as np
from prometheus_client import Gauge

from client.generated.recsys.v1 import index_pb2
from servekit.errors import FailedPrecondition, InvalidArgument
from servekit.text import has_content

from .catalog import search_text
from .catalog_updates import breadcrumb_string
from .embedder_client import EmbedderClient
from .product_limits import (MAX_ATTRIBUTE_KEY_CHARS, MAX_ATTRIBUTE_NAMES, MAX_ID_CHARS,
                             MAX_PRODUCT_BYTES)
from .store import StoreHolder, WriteResult

# Set at start (server.py) and after every write through this service. On the Milvus store, other
# replicas' writes show at their next write here, or in GetStats.
PRODUCTS = Gauge("index_products", "Products served")


def product_dict(p: index_pb2.Product) -> dict:
    """A Product message as the plain fields Snapshot.with_upserts takes, as stored: image URLs
    stripped (empty URLs dropped), only the attributes with a value, -0.0 as 0.0."""
    return {"id": p.id, "title": p.title, "brand": p.brand, "description": p.description,
            "price": p.price + 0.0 if p.HasField("price") else None,
            "categories": list(p.categories), "material": p.material, "color": p.color,
            "images": [u.strip() for u in p.images if u.strip()],
            "attributes": {k: v for k, v in p.attributes.items() if v}}


def product_texts(products) -> list[str]:
    """The search texts of Product messages (recipe step 3)."""
    return [search_text(p.title, p.brand, breadcrumb_string(list(p.categories)), p.material,
                        p.color, p.description) for p in products]


def returned_product(p: index_pb2.Product) -> index_pb2.Product:
    """The Product message the service returns for `p` once stored: as stored (product_dict), with
    the output-only category (the breadcrumb's last level) and a price. An unset price comes back
    as the catalog's median; a set optional double is 9 bytes whatever its value, so 0.0 sizes it."""
    fields = product_dict(p)
    levels = fields["categories"]
    fields.update(price=0.0 if fields["price"] is None else fields["price"],
                  category=levels[-1] if levels else "")
    return index_pb2.Product(**fields)


def _check_batch(n: int, limit: int, what: str) -> None:
    if n == 0:
        raise InvalidArgument(f"{what} is empty: send 1 to {limit}")
    if n > limit:
        raise InvalidArgument(f"{what} holds {n} items; at most {limit} per call")


def _check_images(name: str, images) -> None:
    for i, url in enumerate(images):
        # Surrounding whitespace is stripped (as the catalog reader does). Inside, a control
        # character is no part of a URL (RFC 3986: percent-encode it), and a newline would read
        # back as two images (the catalog keeps a product's URLs newline-separated).
        if any(unicodedata.category(ch) == "Cc" for ch in url.strip()):
            raise InvalidArgument(f"{name}: images[{i}] holds a control character (e.g. a "
                                  "newline): send one URL per item, percent-encoded")


def _check_attribute_keys(name: str, attributes) -> None:
    for key in attributes:
        if not key.strip():
            raise InvalidArgument(f"{name}: an attribute has an empty name: name every attribute")
        if len(key) > MAX_ATTRIBUTE_KEY_CHARS:
            raise InvalidArgument(f"{name}: attribute name {key[:40]!r}... is {len(key)} "
                                  f"characters; at most {MAX_ATTRIBUTE_KEY_CHARS}")


def _check_product(name: str, p: index_pb2.Product) -> None:
    if not p.id.strip():
        raise InvalidArgument(f"{name}: id is empty")
    if p.id != p.id.strip():  # ids match exactly: GetProduct and DeleteProducts would miss it
        raise InvalidArgument(f"{name}: id has leading or trailing whitespace: send it without")
    if len(p.id) > MAX_ID_CHARS:
        raise InvalidArgument(f"{name}: id is longer than {MAX_ID_CHARS} characters")
    if not has_content(p.title):
        raise InvalidArgument(f"{name}: title is empty (or only whitespace and invisible "
                              "characters)")
    if p.HasField("price") and not (math.isfinite(p.price) and p.price >= 0):
        raise InvalidArgument(f"{name}: price must be a finite number >= 0, got {p.price}")
    _check_images(name, p.images)
    _check_attribute_keys(name, p.attributes)
    size = returned_product(p).ByteSize()
    if size > MAX_PRODUCT_BYTES:
        raise InvalidArgument(f"{name}: {size} bytes as returned, over {MAX_PRODUCT_BYTES} per "
                              "product (texts, categories, images and attributes together, the "
                              "breadcrumb's last level counted twice: it is also `category`)")


def validate_products(products, limit: int) -> None:
    _check_batch(len(products), limit, "products")
    for i, p in enumerate(products):
        pid = p.id if len(p.id) <= 100 else p.id[:100] + "..."  # the status keeps 2,000 bytes
        _check_product(f"products[{i}]" + (f" (id {pid!r})" if p.id.strip() else ""), p)


def validate_ids(product_ids: list[str], limit: int) -> None:
    _check_batch(len(product_ids), limit, "product_ids")
    for i, product_id in enumerate(product_ids):
        if not product_id.strip():
            raise InvalidArgument(f"product_ids[{i}] is empty: send the id of every product to "
                                  "delete")


def check_attribute_names(existing, products) -> None:
    """Refuse a batch (whole) that would take the catalog over MAX_ATTRIBUTE_NAMES distinct
    attribute names; `existing`: the names the catalog holds (a set or dict keys)."""
    new = sorted({key for p in products for key, value in p.attributes.items()
                  if value and key not in existing})
    if not new or len(existing) + len(new) <= MAX_ATTRIBUTE_NAMES:
        return
    shown = ", ".join(repr(n[:40]) for n in new[:5]) + (f" and {len(new) - 5} more"
                                                       if len(new) > 5 else "")
    raise InvalidArgument(
        f"products: the batch adds {len(new)} attribute names ({shown}) to the "
        f"{len(existing)} the catalog holds; a catalog holds at most {MAX_ATTRIBUTE_NAMES} "
        "distinct attribute names: reuse names it has (those of its products' attributes); "
        "names only deleted products used are freed at the next compaction")


def clean_products(products) -> list[index_pb2.Product]:
    """The products as stored (product_dict): output-only fields (category) dropped, an unset
    price left unset (the catalog's median applies)."""
    return [index_pb2.Product(**{k: v for k, v in product_dict(p).items() if v is not None})
            for p in products]


class ProductWrites:
    """Validates and embeds a write, then applies it to the served store."""

    def __init__(self, holder: StoreHolder, embedder: EmbedderClient, *, max_batch_products: int,
                 embed_timeout_s: float = 300.0):
        self.holder, self.embedder = holder, embedder
        self.max_batch_products = max_batch_products
        # A write sent without a deadline may wait this long for its vectors (--build-timeout-s:
        # it embeds catalog texts, as a build does, not one short query).
        self.embed_timeout_s = embed_timeout_s

    def upsert(self, products, timeout: float | None) -> WriteResult:
        validate_products(products, self.max_batch_products)
        store = self.holder.store  # UNAVAILABLE while starting: before anything is embedded
        vectors = self.embedder.embed(product_texts(products), what="products",
                                      timeout=self.embed_timeout_s if timeout is None else timeout,
                                      callers=timeout is not None)
        _check_dimension(vectors, store.dimension)
        result = store.upsert(clean_products(products), vectors)
        PRODUCTS.set(result.product_count)
        return result

    def delete(self, product_ids) -> WriteResult:
        ids = [str(i) for i in product_ids]
        validate_ids(ids, self.max_batch_products)
        result = self.holder.store.delete(ids)
        PRODUCTS.set(result.product_count)
        return result


def _check_dimension(vectors: np.ndarray, dimension: int) -> None:
    if vectors.shape[1] != dimension:
        # Not the caller's to fix: the embedder serves another model than the index was built
        # with (an operator's change). Nothing is applied.
        raise FailedPrecondition(f"write not applied: the embedder's vectors have dimension "
                                 f"{vectors.shape[1]}, the index {dimension}; point --embedder "
                                 "at the index's model, or rebuild the index "
                                 "(--on-model-change rebuild)")
