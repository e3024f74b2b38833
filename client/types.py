"""Plain, immutable results of RecsysClient calls: no protobuf message ever leaves the client.

client/convert.py is the one place that turns messages into these and back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

MODES = ("semantic", "lexical", "hybrid")
# How MODE_HYBRID fuses its two rankings (HybridParams.fusion).
FUSIONS = ("rrf", "weighted")


@dataclass(frozen=True)
class Product:
    id: str
    title: str
    brand: str = ""
    description: str = ""
    # None: unknown (in an upsert, the server fills in the catalog's median price).
    price: float | None = None
    # The category breadcrumb, most general first.
    categories: tuple[str, ...] = ()
    # The short category: the breadcrumb's last level (filled in by the server).
    category: str = ""
    material: str = ""
    color: str = ""
    images: tuple[str, ...] = ()
    # The catalog's other columns, by column name.
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Hit:
    product: Product
    score: float
    # 1-based position in the full ranking (offset included).
    rank: int


@dataclass(frozen=True)
class SearchTiming:
    """Microseconds, measured by the index service."""
    embed_us: int = 0
    search_us: int = 0
    total_us: int = 0


@dataclass(frozen=True)
class SearchResult:
    hits: tuple[Hit, ...]
    timing: SearchTiming = SearchTiming()
    # True when the query's vector came from the index service's query cache.
    query_vector_cached: bool = False

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    def __getitem__(self, i: int) -> Hit:
        return self.hits[i]

    @property
    def ids(self) -> list[str]:
        return [hit.product.id for hit in self.hits]


@dataclass(frozen=True)
class HybridParams:
    """MODE_HYBRID's fusion; None leaves the server's default.

    fusion: "rrf" (reciprocal rank fusion: rrf_k, default 60, and the two weights, default 1) or
    "weighted" (alpha x min-max semantic score + (1 - alpha) x min-max lexical score, alpha from
    0 to 1); None: the service's --hybrid-fusion / --hybrid-alpha (Stats.hybrid_fusion,
    Stats.hybrid_alpha). candidates: rows taken from each ranking (1 to 100,000; None: the
    service's --hybrid-candidates)."""
    rrf_k: float | None = None
    semantic_weight: float | None = None
    lexical_weight: float | None = None
    fusion: str | None = None
    alpha: float | None = None
    candidates: int | None = None


@dataclass(frozen=True)
class SearchParams:
    """The vector index's search parameters for one request; None / False keep the service's
    settings. hnsw_ef (1-4096) applies to an HNSW index, ivf_nprobe (1-65536) to an IVF index
    (another type ignores them); exact=True scans every vector (recall 1, slower)."""
    hnsw_ef: int | None = None
    ivf_nprobe: int | None = None
    exact: bool = False


@dataclass(frozen=True)
class ProductPage:
    products: tuple[Product, ...]
    # Pass to the next list_products_page call; "" on the last page.
    next_page_token: str
    total_count: int


@dataclass(frozen=True)
class UpsertResult:
    upserted: int
    product_count: int
    sequence: int


@dataclass(frozen=True)
class DeleteResult:
    deleted: int
    not_found: tuple[str, ...]
    product_count: int
    sequence: int


@dataclass(frozen=True)
class Stats:
    product_count: int
    dimension: int
    model_name: str
    index_type: str
    catalog_sha256: str = ""
    built_at: str = ""
    embedder_target: str = ""
    max_k: int = 0
    max_batch_products: int = 0
    query_cache_hits: int = 0
    query_cache_misses: int = 0
    wal_sequence: int = 0
    lexical_vocabulary_size: int = 0
    store: str = ""
    catalog_format: str = ""    # "csv", "jsonl" or "parquet"
    csv_delimiter: str = ""     # CSV: ",", ";", "\t" or "|"
    # What a hybrid search gets for HybridParams fields it leaves unset (the service's flags).
    hybrid_fusion: str = ""
    hybrid_alpha: float = 0.0
    hybrid_candidates: int = 0


@dataclass(frozen=True)
class ModelInfo:
    model_name: str
    dimension: int
    max_seq_length: int
    normalized: bool
    max_texts_per_request: int = 0
    max_chars_per_text: int = 0
    max_queue_texts: int = 0
    max_batch_size: int = 0
    max_batch_wait_ms: float = 0.0
    max_message_bytes: int = 0
    # What runs the forward pass ("torch" or "openvino") and at which precision ("fp32", "bf16").
    backend: str = ""
    precision: str = ""


@dataclass(frozen=True)
class Embedding:
    values: tuple[float, ...]
    # Tokens the model saw (after truncation), special tokens included.
    token_count: int = 0
    truncated: bool = False


@dataclass(frozen=True)
class EmbedTiming:
    """Microseconds, measured by the embedder."""
    queue_us: int = 0
    inference_us: int = 0
    total_us: int = 0


@dataclass(frozen=True)
class EmbedResult:
    # One per input text, in input order.
    embeddings: tuple[Embedding, ...]
    model_name: str = ""
    total_tokens: int = 0
    timing: EmbedTiming = EmbedTiming()

    @property
    def vectors(self) -> list[tuple[float, ...]]:
        return [e.values for e in self.embeddings]

    def __len__(self) -> int:
        return len(self.embeddings)
