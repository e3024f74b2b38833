"""UpsertProducts / DeleteProducts above the store: validate, embed, then hand the batch over.

A batch is all or nothing: every product is validated first (INVALID_ARGUMENT names the product
and nothing is applied), then embedded through the embedder (UNAVAILABLE: nothing applied), then
given to the store (store.Store.upsert / delete), which acknowledges it once durable: the FAISS
store's write-ahead log (writes.py), or Milvus's own log.
"""
from __future__ import annotations

import math

import numpy as np

from client.generated.recsys.v1 import index_pb2
from servekit.errors import FailedPrecondition, InvalidArgument

from .catalog import search_text
from .catalog_updates import breadcrumb_string
from .embedder_client import EmbedderClient
from .store import StoreHolder, WriteResult

MAX_ID_CHARS = 1024
# One product's encoded size: keeps a page of 1,000 products (ListProducts, Search with k=1000)
# under the 64 MiB message limit (images and attributes are not bounded by the embedder's limits).
MAX_PRODUCT_BYTES = 64 * 1024


def product_dict(p: index_pb2.Product) -> dict:
    """A Product message as the plain fields Snapshot.with_upserts takes."""
    return {"id": p.id.strip(), "title": p.title, "brand": p.brand, "description": p.description,
            "price": p.price if p.HasField("price") else None, "categories": list(p.categories),
            "material": p.material, "color": p.color, "images": list(p.images),
            "attributes": dict(p.attributes)}


def product_texts(products) -> list[str]:
    """The search texts of Product messages (recipe step 3)."""
    return [search_text(p.title, p.brand, breadcrumb_string(list(p.categories)), p.material,
                        p.color, p.description) for p in products]


def _check_batch(n: int, limit: int, what: str) -> None:
    if n == 0:
        raise InvalidArgument(f"{what} is empty: send 1 to {limit}")
    if n > limit:
        raise InvalidArgument(f"{what} holds {n} items; at most {limit} per call")


def validate_products(products, limit: int) -> None:
    _check_batch(len(products), limit, "products")
    for i, p in enumerate(products):
        name = f"products[{i}]" + (f" (id {p.id!r})" if p.id.strip() else "")
        if not p.id.strip():
            raise InvalidArgument(f"{name}: id is empty")
        if len(p.id) > MAX_ID_CHARS:
            raise InvalidArgument(f"{name}: id is longer than {MAX_ID_CHARS} characters")
        if not p.title.strip():
            raise InvalidArgument(f"{name}: title is empty")
        if p.ByteSize() > MAX_PRODUCT_BYTES:
            raise InvalidArgument(f"{name}: {p.ByteSize()} bytes encoded, over {MAX_PRODUCT_BYTES} "
                                  "per product (texts, images and attributes together)")
        if p.HasField("price") and not (math.isfinite(p.price) and p.price >= 0):
            raise InvalidArgument(f"{name}: price must be a finite number >= 0, got {p.price}")


def clean_products(products) -> list[index_pb2.Product]:
    """The products as stored: ids stripped, output-only fields (category) dropped, an unset
    price left unset (the catalog's median applies)."""
    return [index_pb2.Product(**{k: v for k, v in product_dict(p).items() if v is not None})
            for p in products]


class ProductWrites:
    """Validates and embeds a write, then applies it to the served store."""

    def __init__(self, holder: StoreHolder, embedder: EmbedderClient, *, max_batch_products: int):
        self.holder, self.embedder = holder, embedder
        self.max_batch_products = max_batch_products

    def upsert(self, products, timeout: float | None) -> WriteResult:
        validate_products(products, self.max_batch_products)
        store = self.holder.store  # UNAVAILABLE while starting: before anything is embedded
        vectors = self.embedder.embed(product_texts(products), timeout=timeout, what="products",
                                      callers=True)
        _check_dimension(vectors, store.dimension)
        return store.upsert(clean_products(products), vectors)

    def delete(self, product_ids) -> WriteResult:
        ids = [str(i) for i in product_ids]
        _check_batch(len(ids), self.max_batch_products, "product_ids")
        return self.holder.store.delete(ids)


def _check_dimension(vectors: np.ndarray, dimension: int) -> None:
    if vectors.shape[1] != dimension:
        # Not the caller's to fix: the embedder serves another model than the index was built
        # with (an operator's change). Nothing is applied.
        raise FailedPrecondition(f"write not applied: the embedder's vectors have dimension "
                                 f"{vectors.shape[1]}, the index {dimension}; point --embedder "
                                 "at the index's model, or rebuild the index "
                                 "(--on-model-change rebuild)")
