"""The store interface: where the catalog, its vectors and its text live, behind one API.

Two implementations, chosen by `--store` (INDEX_STORE): `faiss` (faiss_store.py: the catalog,
FAISS index, TF-IDF model and write-ahead log inside this process, the default) and `milvus`
(milvus/: products, vectors and text in a Milvus collection; replicas of the index service are
stateless fronts over it). Everything else is one code path above the store: request validation,
the query-vector cache and the embedder client (search.py, product_writes.py), filter validation
(filters.FilterSpec), paging, hybrid fusion (fusion.py) and the gRPC contract (servicer.py).

A call takes one `StoreView` (`store.view()`) and uses only it, so that its steps (rankings,
then the page's products) see one state of the catalog:

    view = store.view()
    ranked = view.vector_ranking(query_vector, depth=offset + k, spec=spec, overrides={})
    products = view.products(ranked.keys[offset:offset + k])

A ranking's keys identify products within the view: catalog rows (FAISS) or product ids
(Milvus). They are sortable, and ties in a ranking are broken by the lower key (catalog order
for FAISS, id order for Milvus).
"""
from __future__ import annotations

import base64
import contextlib
import contextvars
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from servekit.errors import InvalidArgument, Unavailable

from .filters import FilterSpec


@dataclass(frozen=True)
class Ranked:
    """Products best first: `keys[i]` scored `scores[i]`."""
    keys: np.ndarray
    scores: np.ndarray

    @classmethod
    def empty(cls) -> "Ranked":
        return cls(np.array([], dtype=np.int64), np.array([], dtype=np.float32))

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class ProductPage:
    products: list[dict]
    next_page_token: str
    total_count: int


@dataclass(frozen=True)
class WriteResult:
    """What a write did: products written or deleted, ids not found (deletes), the catalog's
    size after it, and its position in the store's log (0 where the store has none of its own)."""
    count: int
    product_count: int
    sequence: int
    not_found: tuple[str, ...] = ()


class StoreView(ABC):
    """One consistent reading of the store, for one call."""

    @abstractmethod
    def vector_ranking(self, vector: np.ndarray, depth: int, spec: FilterSpec,
                       overrides: dict, exclude_ids: tuple[str, ...] = ()) -> Ranked:
        """The `depth` products most like the normalized `vector` that match `spec` (exactly:
        min(depth, matching) of them), best first; never one of `exclude_ids`."""

    @abstractmethod
    def lexical_ranking(self, text: str, depth: int, spec: FilterSpec, *,
                        matches_only: bool) -> Ranked:
        """Lexical ranking of `text` over the products matching `spec`, best first;
        `matches_only`: only products sharing a term with the text (score > 0). Raises
        FailedPrecondition where the store has no lexical search."""

    @abstractmethod
    def size_hint(self, spec: FilterSpec) -> int:
        """How many products match `spec`, or an upper bound where counting costs a round trip
        (sizes the candidate lists of hybrid search)."""

    @abstractmethod
    def vectors_of(self, product_ids: list[str]) -> np.ndarray:
        """The stored vectors of these products, one row each, in order; NotFound naming the
        unknown ids when any has none."""

    @abstractmethod
    def products(self, keys) -> list[dict | None]:
        """The products of ranking keys, in that order, as recsys.v1.Product fields (None for a
        product deleted since it was ranked, where the store can see that happen)."""

    @abstractmethod
    def product(self, product_id: str) -> dict:
        """One product's fields; NotFound when there is none."""

    @abstractmethod
    def page(self, page_size: int, page_token: str) -> ProductPage:
        """A page of the whole catalog in the store's order; InvalidArgument for a token this
        store did not issue."""


class Store(ABC):
    """A catalog store. `start()` once serving; `close()` at shutdown."""

    name: str = ""
    dimension: int = 0

    @abstractmethod
    def view(self) -> StoreView:
        """A consistent reading for one call (UNAVAILABLE while the store cannot answer)."""

    @abstractmethod
    def upsert(self, products: list, vectors: np.ndarray) -> WriteResult:
        """Add or replace validated products (recsys.v1.Product messages, price unset where the
        catalog's median applies) with their normalized vectors, all or nothing; returns once
        the store has made the write durable."""

    @abstractmethod
    def delete(self, product_ids: list[str]) -> WriteResult:
        """Remove products by id; ids not in the catalog come back in `not_found`."""

    @abstractmethod
    def stats(self) -> dict:
        """The store's part of recsys.v1.Stats (product_count, model_name, index_type, ...)."""

    def start(self) -> None:
        """Begin background work (compaction, health watching); called once serving."""

    def close(self) -> None:
        """Flush and release what the store holds; called at shutdown."""


# The deadline (time.monotonic()) of the call being served in this thread, less a margin, so that a
# store that waits on a server (Milvus) answers UNAVAILABLE before the caller's deadline passes.
_CALL_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("call_deadline",
                                                                              default=None)


@contextlib.contextmanager
def call_deadline(seconds_left: float | None):
    """Within the block, `time_left(default)` is at most `seconds_left` from now."""
    token = _CALL_DEADLINE.set(None if seconds_left is None else time.monotonic() + seconds_left)
    try:
        yield
    finally:
        _CALL_DEADLINE.reset(token)


def time_left(default: float) -> float:
    """Seconds a store may wait: `default`, shortened to the current call's deadline."""
    deadline = _CALL_DEADLINE.get()
    if deadline is None:
        return default
    return max(0.001, min(default, deadline - time.monotonic()))


class StoreHolder:
    """The store being served, once start-up has opened it; UNAVAILABLE before."""

    def __init__(self, store: Store | None = None):
        self._store = store

    @property
    def store(self) -> Store:
        store = self._store
        if store is None:
            raise Unavailable("the index is still building: retry when health reports SERVING")
        return store

    def set(self, store: Store) -> None:
        self._store = store


# -- page tokens: opaque to callers, each store's own -------------------------------------------

def no_products_message(product_ids: list[str]) -> str:
    """NOT_FOUND's message for unknown ids: the id, or the first five of several."""
    if len(product_ids) == 1:
        return f"no product with id {product_ids[0]!r}"
    more = f" and {len(product_ids) - 5} more" if len(product_ids) > 5 else ""
    return f"no products with ids {', '.join(map(repr, product_ids[:5]))}{more}"


def encode_page_token(prefix: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{prefix}{value}".encode()).decode().rstrip("=")


def decode_page_token(prefix: str, token: str, valid=lambda value: True) -> str:
    """The value a token of `encode_page_token(prefix, value)` holds; InvalidArgument for any
    other token (another store's, edited, garbage, or a value `valid` refuses)."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    if not text.startswith(prefix) or not valid(text[len(prefix):]):
        raise InvalidArgument("page_token is not one this server issued: pass next_page_token of "
                              "the previous page, or empty for the first page")
    return text[len(prefix):]
