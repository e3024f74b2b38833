"""protobuf messages <-> client/types.py dataclasses, in one place."""
from __future__ import annotations

import math
from typing import Iterable, Sequence

from .errors import InvalidArgumentError
from .generated.recsys.v1 import embedder_pb2, index_pb2
from .types import (FUSIONS, MODES, DeleteResult, EmbedResult, EmbedTiming, Embedding, Hit,
                          HybridParams, ModelInfo, Product, ProductPage, SearchParams,
                          SearchResult, SearchTiming, Stats, UpsertResult)

_MODE_TO_PROTO = {"semantic": index_pb2.MODE_SEMANTIC, "lexical": index_pb2.MODE_LEXICAL,
                  "hybrid": index_pb2.MODE_HYBRID}
_FUSION_TO_PROTO = {"rrf": index_pb2.FUSION_RRF, "weighted": index_pb2.FUSION_WEIGHTED}


def _optional(message, name: str):
    return getattr(message, name) if message.HasField(name) else None


# ---- index: messages -> dataclasses ----

def product_from_proto(p: index_pb2.Product) -> Product:
    return Product(id=p.id, title=p.title, brand=p.brand, description=p.description,
                   price=_optional(p, "price"), categories=tuple(p.categories),
                   category=p.category, material=p.material, color=p.color,
                   images=tuple(p.images), attributes=dict(p.attributes))


def search_result_from_proto(r: index_pb2.SearchResponse) -> SearchResult:
    hits = tuple(Hit(product=product_from_proto(h.product), score=h.score, rank=h.rank)
                 for h in r.hits)
    timing = SearchTiming(embed_us=r.timing.embed_us, search_us=r.timing.search_us,
                          total_us=r.timing.total_us)
    return SearchResult(hits=hits, timing=timing, query_vector_cached=r.query_vector_cached)


def page_from_proto(r: index_pb2.ListProductsResponse) -> ProductPage:
    return ProductPage(products=tuple(product_from_proto(p) for p in r.products),
                       next_page_token=r.next_page_token, total_count=r.total_count)


def upsert_result_from_proto(r: index_pb2.UpsertProductsResponse) -> UpsertResult:
    return UpsertResult(upserted=r.upserted, product_count=r.product_count, sequence=r.sequence)


def delete_result_from_proto(r: index_pb2.DeleteProductsResponse) -> DeleteResult:
    return DeleteResult(deleted=r.deleted, not_found=tuple(r.not_found),
                        product_count=r.product_count, sequence=r.sequence)


def stats_from_proto(s: index_pb2.Stats) -> Stats:
    return Stats(product_count=s.product_count, dimension=s.dimension, model_name=s.model_name,
                 index_type=s.index_type, catalog_sha256=s.catalog_sha256, built_at=s.built_at,
                 embedder_target=s.embedder_target, max_k=s.max_k,
                 max_batch_products=s.max_batch_products, query_cache_hits=s.query_cache_hits,
                 query_cache_misses=s.query_cache_misses, wal_sequence=s.wal_sequence,
                 lexical_vocabulary_size=s.lexical_vocabulary_size, store=s.store,
                 catalog_format=s.catalog_format, csv_delimiter=s.csv_delimiter,
                 hybrid_fusion=s.hybrid_fusion, hybrid_alpha=s.hybrid_alpha,
                 hybrid_candidates=s.hybrid_candidates)


# ---- index: arguments -> messages ----

def product_to_proto(p: Product) -> index_pb2.Product:
    message = index_pb2.Product(id=p.id, title=p.title, brand=p.brand, description=p.description,
                                categories=list(p.categories), category=p.category,
                                material=p.material, color=p.color, images=list(p.images),
                                attributes=dict(p.attributes))
    if p.price is not None:
        message.price = p.price
    return message


def _as_list(one: str | None, many: Iterable[str] | None, name: str) -> list[str]:
    if isinstance(many, str):
        raise InvalidArgumentError(f"{name}s must be a list of strings, not the string {many!r}"
                                   f" (use {name}= for one)")
    values = list(many or [])
    if one is not None:
        values.append(one)
    return values


def _check_price(name: str, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise InvalidArgumentError(f"{name} must be a finite number, not {value}")


def filter_to_proto(*, category: str | None = None, categories: Sequence[str] | None = None,
                    brand: str | None = None, brands: Sequence[str] | None = None,
                    min_price: float | None = None, max_price: float | None = None
                    ) -> index_pb2.Filter:
    _check_price("min_price", min_price)
    _check_price("max_price", max_price)
    message = index_pb2.Filter(categories=_as_list(category, categories, "category"),
                               brands=_as_list(brand, brands, "brand"))
    if min_price is not None:
        message.min_price = float(min_price)
    if max_price is not None:
        message.max_price = float(max_price)
    return message


def mode_to_proto(mode: str | int) -> int:
    """"semantic" | "lexical" | "hybrid" (or an index_pb2.Mode value) -> the enum value."""
    if isinstance(mode, int):
        return mode
    try:
        return _MODE_TO_PROTO[mode.lower()]
    except (KeyError, AttributeError):
        raise InvalidArgumentError(
            f"unknown mode {mode!r}: use one of {', '.join(MODES)}") from None


def fusion_to_proto(fusion: str | int | None) -> int:
    """"rrf" | "weighted" (or an index_pb2.Fusion value; None: unspecified) -> the enum value."""
    if fusion is None or isinstance(fusion, int):
        return fusion or index_pb2.FUSION_UNSPECIFIED
    try:
        return _FUSION_TO_PROTO[fusion.lower()]
    except (KeyError, AttributeError):
        raise InvalidArgumentError(
            f"unknown fusion {fusion!r}: use one of {', '.join(FUSIONS)}") from None


def hybrid_to_proto(h: HybridParams | None) -> index_pb2.HybridParams | None:
    if h is None:
        return None
    message = index_pb2.HybridParams(fusion=fusion_to_proto(h.fusion))
    for name in ("rrf_k", "semantic_weight", "lexical_weight", "alpha"):
        value = getattr(h, name)
        if value is not None:
            setattr(message, name, float(value))
    if h.candidates is not None:
        message.candidates = int(h.candidates)
    return message


def search_params_to_proto(p: SearchParams | None) -> index_pb2.VectorSearchParams | None:
    if p is None:
        return None
    message = index_pb2.VectorSearchParams(exact=bool(p.exact))
    if p.hnsw_ef is not None:
        message.hnsw_ef = int(p.hnsw_ef)
    if p.ivf_nprobe is not None:
        message.ivf_nprobe = int(p.ivf_nprobe)
    return message


# ---- embedder ----

def embed_result_from_proto(r: embedder_pb2.EmbedResponse) -> EmbedResult:
    embeddings = tuple(Embedding(values=tuple(e.values), token_count=e.token_count,
                                 truncated=e.truncated) for e in r.embeddings)
    timing = EmbedTiming(queue_us=r.timing.queue_us, inference_us=r.timing.inference_us,
                         total_us=r.timing.total_us)
    return EmbedResult(embeddings=embeddings, model_name=r.model_name,
                       total_tokens=r.total_tokens, timing=timing)


def model_info_from_proto(m: embedder_pb2.ModelInfo) -> ModelInfo:
    return ModelInfo(model_name=m.model_name, dimension=m.dimension,
                     max_seq_length=m.max_seq_length, normalized=m.normalized,
                     max_texts_per_request=m.max_texts_per_request,
                     max_chars_per_text=m.max_chars_per_text, max_queue_texts=m.max_queue_texts,
                     max_batch_size=m.max_batch_size, max_batch_wait_ms=m.max_batch_wait_ms,
                     max_message_bytes=m.max_message_bytes, backend=m.backend,
                     precision=m.precision)
