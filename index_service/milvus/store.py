"""MilvusStore: the store interface (store.py) over one Milvus collection.

Searches run inside Milvus with the filter as an expression (exact: never a post-filter of a
cut top-k); hybrid search takes Milvus's dense and BM25 rankings and fuses them above the store
(fusion.py), so HybridParams mean the same on both stores (Milvus's RRFRanker has no per-side
weights). Ranking keys are product ids: ties and ListProducts follow id order (Milvus's primary
key order), not the catalog file's.

Reads use the configured consistency level (Session by default: this replica reads its own
writes at once; other replicas see them within Milvus's time tick, ~0.2 s measured). There is no
write-ahead log here: Milvus's own log makes a write durable before it is acknowledged.
"""
from __future__ import annotations

import numpy as np
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from servekit.errors import FailedPrecondition, InvalidArgument, NotFound

from ..filters import FilterSpec
from ..product_limits import MAX_ID_CHARS
from ..product_writes import product_dict, product_texts
from ..search_limits import MILVUS_MAX_TOPK
from ..store import (ProductPage, Ranked, Store, StoreView, WriteResult, decode_page_token,
                     encode_page_token, no_products_message)
from . import schema
from .errors import MilvusCalls
from .expressions import filter_expression, ids_expression, quote
from .watch import HealthWatch, search_probe

MAX_TOPK = MILVUS_MAX_TOPK  # Milvus's limit on one search's hits
PREFETCH_PRODUCTS = 100     # rankings this short bring their products along (one round trip)
_TOKEN_PREFIX = "m1:"


class MilvusStore(Store):
    name = "milvus"

    def __init__(self, client: MilvusClient, calls: MilvusCalls, *, collection: str, info: dict,
                 consistency: str, index_type: str, ef_search: int, bm25: bool,
                 server_version: str):
        self.client, self.calls, self.collection, self.info = client, calls, collection, info
        self.consistency, self.index_type, self.ef_search = consistency, index_type, ef_search
        self.bm25, self.server_version = bm25, server_version
        self.dimension = int(info["dimension"])
        self.on_health = None  # set_serving(bool) of the server's health, set before start()
        self._watch: HealthWatch | None = None

    def start(self) -> None:
        if self.on_health is not None:
            self._watch = HealthWatch(self.check_loaded, self.on_health,
                                      what=f"the Milvus server at {self.calls.uri}",
                                      read=search_probe(self))
            self._watch.start()

    def check_loaded(self) -> None:
        """Raise unless the collection is loaded (queries would fail with "collection not
        loaded"). A collection that is not loaded, nor loading (released by someone), is asked
        to load again, as at start; its load then goes on inside Milvus."""
        state = self.client.get_load_state(self.collection, timeout=2.0)
        name = getattr(state.get("state"), "name", str(state.get("state")))
        if name == "Loaded":
            return
        progress = f", {state['progress']}%" if "progress" in state else ""
        if name == "NotLoad":
            try:
                self.client.load_collection(self.collection, timeout=2.0)
            except MilvusException:  # not loaded within 2 s: the load goes on inside Milvus
                pass
            progress = ": asked Milvus to load it again"
        raise CollectionNotLoaded(f"collection {self.collection} is {name}{progress}")

    def view(self) -> "MilvusView":
        return MilvusView(self)

    def count(self, consistency: str | None = None) -> int:
        with self.calls.failures("count the products"):
            rows = self.client.query(self.collection, filter="", output_fields=["count(*)"],
                                     consistency_level=consistency or self.consistency,
                                     timeout=self.calls.timeout())
        return int(rows[0]["count(*)"])

    def upsert(self, products, vectors) -> WriteResult:
        median = float(self.info.get("median_price", 0.0))
        texts = product_texts(products) if self.bm25 else [None] * len(products)
        last = {p.id: i for i, p in enumerate(products)}  # within a batch the last one wins
        try:
            rows = [schema.to_row(_priced(product_dict(products[i]), median), vectors[i],
                                  texts[i]) for i in sorted(last.values())]
        except schema.RowError as exc:  # a field over Milvus's bounds: the caller's to fix
            raise InvalidArgument(f"{exc}: nothing of the batch was written") from None
        with self.calls.failures("write the products"):
            self.client.upsert(self.collection, rows, timeout=self.calls.timeout())
        return WriteResult(len(rows), self.count(), 0)

    def delete(self, product_ids) -> WriteResult:
        found = set(self.view().existing(list(dict.fromkeys(product_ids))))
        if found:
            with self.calls.failures("delete the products"):
                self.client.delete(self.collection, filter=ids_expression(sorted(found)),
                                   timeout=self.calls.timeout())
        not_found = tuple(i for i in dict.fromkeys(product_ids) if i not in found)
        # A Strong read waits until Milvus has applied the delete, so that this replica's
        # Session reads see it from now on: a delete's reply carries no timestamp that Session
        # consistency could wait for (Milvus 2.3), as an upsert's does.
        return WriteResult(len(found), self.count("Strong" if found else None), 0, not_found)

    def stats(self) -> dict:
        info = self.info
        return {"product_count": self.count(), "dimension": self.dimension,
                "model_name": info["model_name"], "index_type": self.index_type,
                "catalog_sha256": info["catalog_sha256"], "built_at": info.get("built_at", ""),
                "wal_sequence": 0, "lexical_vocabulary_size": 0,
                "catalog_format": info.get("catalog_format", "csv"),
                "csv_delimiter": info.get("csv_delimiter", ",")}

    def close(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        self.client.close()


class CollectionNotLoaded(Exception):
    """Milvus answers, but the collection cannot be queried yet."""


def _is_id(value: str) -> bool:
    """What a page token of ours holds: the last id listed (1 to MAX_ID_CHARS characters)."""
    return 0 < len(value) <= MAX_ID_CHARS


def _priced(product: dict, median: float) -> dict:
    return product if product.get("price") is not None else {**product, "price": median}


class MilvusView(StoreView):
    """One call's reads. Products that came back with a ranking are kept for `products()`."""

    def __init__(self, store: MilvusStore):
        self.store, self.client, self.calls = store, store.client, store.calls
        self._known: dict[str, dict] = {}

    def size_hint(self, spec: FilterSpec) -> int:
        return MAX_TOPK  # counting would cost a round trip; Milvus returns what exists

    def _search(self, data, anns_field: str, depth: int, expression: str, params: dict,
                what: str) -> Ranked:
        limit = min(depth, MAX_TOPK)
        fields = schema.PRODUCT_FIELDS if limit <= PREFETCH_PRODUCTS else ["id"]
        with self.calls.failures(what):
            hits = self.client.search(self.store.collection, data=[data], anns_field=anns_field,
                                      limit=limit, filter=expression, output_fields=fields,
                                      search_params=params, timeout=self.calls.timeout(),
                                      consistency_level=self.store.consistency)[0]
        if len(fields) > 1:
            self._known.update((h["id"], schema.from_entity(h["entity"] | {"id": h["id"]}))
                               for h in hits)
        keys = np.array([h["id"] for h in hits], dtype=str)
        return Ranked(keys, np.array([h["distance"] for h in hits], dtype=np.float32))

    def vector_ranking(self, vector, depth, spec, overrides, exclude_ids=()) -> Ranked:
        if overrides.get("exact") and self.store.index_type != "flat":
            raise FailedPrecondition("params.exact: the Milvus store searches its HNSW index; "
                                     "exact search needs a collection with "
                                     "--milvus-index-type flat")
        ef = max(overrides.get("ef_search", self.store.ef_search), min(depth, MAX_TOPK))
        params = {"metric_type": "IP", "params": {"ef": ef}}
        return self._search(np.asarray(vector, dtype=np.float32).tolist(), schema.VECTOR, depth,
                            filter_expression(spec, exclude_ids), params, "search the vectors")

    def lexical_ranking(self, text, depth, spec, *, matches_only) -> Ranked:
        if not self.store.bm25:
            raise FailedPrecondition(
                f"MODE_LEXICAL and MODE_HYBRID need BM25 full-text search, which the Milvus "
                f"server at {self.calls.uri} ({self.store.server_version}) lacks (Milvus >= 2.5 "
                "has it; the collection must be created there): use MODE_SEMANTIC, or --store faiss")
        ranked = self._search(text, schema.SPARSE, depth, filter_expression(spec),
                              {"metric_type": "BM25"}, "search the text")
        # milvus-lite reports BM25 as a negated distance; Milvus as the score itself.
        return Ranked(ranked.keys, np.abs(ranked.scores))

    def _get(self, ids: list[str], fields: list[str], what: str) -> list[dict]:
        # A query on a quoted `id in [...]`, not client.get(ids=...): pymilvus pastes those ids
        # into the expression unescaped, so an id holding a quote broke the call, and a crafted
        # one ("x'] or id not in ['") matched the whole collection (a delete emptied it).
        with self.calls.failures(what):
            return self.client.query(self.store.collection, filter=ids_expression(ids),
                                     output_fields=fields, timeout=self.calls.timeout(),
                                     consistency_level=self.store.consistency)

    def existing(self, ids: list[str]) -> list[str]:
        return [row["id"] for row in self._get(ids, ["id"], "look the products up")] if ids else []

    def vectors_of(self, product_ids: list[str]) -> np.ndarray:
        rows = self._get(list(product_ids), ["id", schema.VECTOR], "read the products' vectors")
        found = {row["id"]: row[schema.VECTOR] for row in rows}
        unknown = [pid for pid in product_ids if pid not in found]
        if unknown:
            raise NotFound(no_products_message(unknown))
        return np.asarray([found[pid] for pid in product_ids], dtype=np.float32)

    def products(self, keys) -> list[dict | None]:
        keys = [str(k) for k in keys]
        missing = [k for k in keys if k not in self._known]
        if missing:
            for row in self._get(missing, schema.PRODUCT_FIELDS, "read the products"):
                self._known[row["id"]] = schema.from_entity(row)
        return [self._known.get(k) for k in keys]  # None: deleted since it was ranked

    def product(self, product_id: str) -> dict:
        rows = self._get([product_id], schema.PRODUCT_FIELDS, "read the product")
        if not rows:
            raise NotFound(no_products_message([product_id]))
        return schema.from_entity(rows[0])

    def page(self, page_size: int, page_token: str) -> ProductPage:
        after = decode_page_token(_TOKEN_PREFIX, page_token, _is_id) if page_token else None
        expression = f"id > {quote(after)}" if after is not None else 'id >= ""'
        with self.calls.failures("list the products"):
            # iterator: the server returns the rows in primary-key order, as pymilvus's query
            # iterator relies on (milvus-lite sorts only then), so `id > last` pages are exact.
            rows = self.client.query(self.store.collection, filter=expression,
                                     limit=page_size + 1, output_fields=schema.PRODUCT_FIELDS,
                                     timeout=self.calls.timeout(), iterator="True",
                                     consistency_level=self.store.consistency)
        rows.sort(key=lambda row: row["id"])
        more = len(rows) > page_size
        rows = rows[:page_size]
        token = encode_page_token(_TOKEN_PREFIX, rows[-1]["id"]) if more else ""
        return ProductPage([schema.from_entity(r) for r in rows], token, self.store.count())
