from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODE_UNSPECIFIED: _ClassVar[Mode]
    MODE_SEMANTIC: _ClassVar[Mode]
    MODE_LEXICAL: _ClassVar[Mode]
    MODE_HYBRID: _ClassVar[Mode]

class Fusion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FUSION_UNSPECIFIED: _ClassVar[Fusion]
    FUSION_RRF: _ClassVar[Fusion]
    FUSION_WEIGHTED: _ClassVar[Fusion]
MODE_UNSPECIFIED: Mode
MODE_SEMANTIC: Mode
MODE_LEXICAL: Mode
MODE_HYBRID: Mode
FUSION_UNSPECIFIED: Fusion
FUSION_RRF: Fusion
FUSION_WEIGHTED: Fusion

class Product(_message.Message):
    __slots__ = ("id", "title", "brand", "description", "price", "categories", "category", "material", "color", "images", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    MATERIAL_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    brand: str
    description: str
    price: float
    categories: _containers.RepeatedScalarFieldContainer[str]
    category: str
    material: str
    color: str
    images: _containers.RepeatedScalarFieldContainer[str]
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., brand: _Optional[str] = ..., description: _Optional[str] = ..., price: _Optional[float] = ..., categories: _Optional[_Iterable[str]] = ..., category: _Optional[str] = ..., material: _Optional[str] = ..., color: _Optional[str] = ..., images: _Optional[_Iterable[str]] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("categories", "brands", "min_price", "max_price")
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    BRANDS_FIELD_NUMBER: _ClassVar[int]
    MIN_PRICE_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedScalarFieldContainer[str]
    brands: _containers.RepeatedScalarFieldContainer[str]
    min_price: float
    max_price: float
    def __init__(self, categories: _Optional[_Iterable[str]] = ..., brands: _Optional[_Iterable[str]] = ..., min_price: _Optional[float] = ..., max_price: _Optional[float] = ...) -> None: ...

class HybridParams(_message.Message):
    __slots__ = ("rrf_k", "semantic_weight", "lexical_weight", "fusion", "alpha", "candidates")
    RRF_K_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    rrf_k: float
    semantic_weight: float
    lexical_weight: float
    fusion: Fusion
    alpha: float
    candidates: int
    def __init__(self, rrf_k: _Optional[float] = ..., semantic_weight: _Optional[float] = ..., lexical_weight: _Optional[float] = ..., fusion: _Optional[_Union[Fusion, str]] = ..., alpha: _Optional[float] = ..., candidates: _Optional[int] = ...) -> None: ...

class VectorSearchParams(_message.Message):
    __slots__ = ("hnsw_ef", "ivf_nprobe", "exact")
    HNSW_EF_FIELD_NUMBER: _ClassVar[int]
    IVF_NPROBE_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    hnsw_ef: int
    ivf_nprobe: int
    exact: bool
    def __init__(self, hnsw_ef: _Optional[int] = ..., ivf_nprobe: _Optional[int] = ..., exact: _Optional[bool] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("query", "k", "filter", "mode", "min_score", "offset", "hybrid", "vector", "params")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    HYBRID_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    query: str
    k: int
    filter: Filter
    mode: Mode
    min_score: float
    offset: int
    hybrid: HybridParams
    vector: _containers.RepeatedScalarFieldContainer[float]
    params: VectorSearchParams
    def __init__(self, query: _Optional[str] = ..., k: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., mode: _Optional[_Union[Mode, str]] = ..., min_score: _Optional[float] = ..., offset: _Optional[int] = ..., hybrid: _Optional[_Union[HybridParams, _Mapping]] = ..., vector: _Optional[_Iterable[float]] = ..., params: _Optional[_Union[VectorSearchParams, _Mapping]] = ...) -> None: ...

class Hit(_message.Message):
    __slots__ = ("product", "score", "rank")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    product: Product
    score: float
    rank: int
    def __init__(self, product: _Optional[_Union[Product, _Mapping]] = ..., score: _Optional[float] = ..., rank: _Optional[int] = ...) -> None: ...

class SearchTiming(_message.Message):
    __slots__ = ("embed_us", "search_us", "total_us")
    EMBED_US_FIELD_NUMBER: _ClassVar[int]
    SEARCH_US_FIELD_NUMBER: _ClassVar[int]
    TOTAL_US_FIELD_NUMBER: _ClassVar[int]
    embed_us: int
    search_us: int
    total_us: int
    def __init__(self, embed_us: _Optional[int] = ..., search_us: _Optional[int] = ..., total_us: _Optional[int] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("hits", "timing", "query_vector_cached")
    HITS_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    QUERY_VECTOR_CACHED_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    timing: SearchTiming
    query_vector_cached: bool
    def __init__(self, hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ..., timing: _Optional[_Union[SearchTiming, _Mapping]] = ..., query_vector_cached: _Optional[bool] = ...) -> None: ...

class SimilarProductsRequest(_message.Message):
    __slots__ = ("product_id", "k", "filter", "min_score", "offset", "params", "product_ids")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_IDS_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    k: int
    filter: Filter
    min_score: float
    offset: int
    params: VectorSearchParams
    product_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, product_id: _Optional[str] = ..., k: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., min_score: _Optional[float] = ..., offset: _Optional[int] = ..., params: _Optional[_Union[VectorSearchParams, _Mapping]] = ..., product_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetProductRequest(_message.Message):
    __slots__ = ("product_id",)
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    def __init__(self, product_id: _Optional[str] = ...) -> None: ...

class ListProductsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListProductsResponse(_message.Message):
    __slots__ = ("products", "next_page_token", "total_count")
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    next_page_token: str
    total_count: int
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_count: _Optional[int] = ...) -> None: ...

class UpsertProductsRequest(_message.Message):
    __slots__ = ("products",)
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ...) -> None: ...

class UpsertProductsResponse(_message.Message):
    __slots__ = ("upserted", "product_count", "sequence")
    UPSERTED_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    upserted: int
    product_count: int
    sequence: int
    def __init__(self, upserted: _Optional[int] = ..., product_count: _Optional[int] = ..., sequence: _Optional[int] = ...) -> None: ...

class DeleteProductsRequest(_message.Message):
    __slots__ = ("product_ids",)
    PRODUCT_IDS_FIELD_NUMBER: _ClassVar[int]
    product_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, product_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteProductsResponse(_message.Message):
    __slots__ = ("deleted", "not_found", "product_count", "sequence")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    not_found: _containers.RepeatedScalarFieldContainer[str]
    product_count: int
    sequence: int
    def __init__(self, deleted: _Optional[int] = ..., not_found: _Optional[_Iterable[str]] = ..., product_count: _Optional[int] = ..., sequence: _Optional[int] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Stats(_message.Message):
    __slots__ = ("product_count", "dimension", "model_name", "index_type", "catalog_sha256", "built_at", "embedder_target", "max_k", "max_batch_products", "query_cache_hits", "query_cache_misses", "wal_sequence", "lexical_vocabulary_size", "store", "catalog_format", "csv_delimiter", "hybrid_fusion", "hybrid_alpha", "hybrid_candidates")
    PRODUCT_COUNT_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    INDEX_TYPE_FIELD_NUMBER: _ClassVar[int]
    CATALOG_SHA256_FIELD_NUMBER: _ClassVar[int]
    BUILT_AT_FIELD_NUMBER: _ClassVar[int]
    EMBEDDER_TARGET_FIELD_NUMBER: _ClassVar[int]
    MAX_K_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    QUERY_CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    QUERY_CACHE_MISSES_FIELD_NUMBER: _ClassVar[int]
    WAL_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_VOCABULARY_SIZE_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FORMAT_FIELD_NUMBER: _ClassVar[int]
    CSV_DELIMITER_FIELD_NUMBER: _ClassVar[int]
    HYBRID_FUSION_FIELD_NUMBER: _ClassVar[int]
    HYBRID_ALPHA_FIELD_NUMBER: _ClassVar[int]
    HYBRID_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    product_count: int
    dimension: int
    model_name: str
    index_type: str
    catalog_sha256: str
    built_at: str
    embedder_target: str
    max_k: int
    max_batch_products: int
    query_cache_hits: int
    query_cache_misses: int
    wal_sequence: int
    lexical_vocabulary_size: int
    store: str
    catalog_format: str
    csv_delimiter: str
    hybrid_fusion: str
    hybrid_alpha: float
    hybrid_candidates: int
    def __init__(self, product_count: _Optional[int] = ..., dimension: _Optional[int] = ..., model_name: _Optional[str] = ..., index_type: _Optional[str] = ..., catalog_sha256: _Optional[str] = ..., built_at: _Optional[str] = ..., embedder_target: _Optional[str] = ..., max_k: _Optional[int] = ..., max_batch_products: _Optional[int] = ..., query_cache_hits: _Optional[int] = ..., query_cache_misses: _Optional[int] = ..., wal_sequence: _Optional[int] = ..., lexical_vocabulary_size: _Optional[int] = ..., store: _Optional[str] = ..., catalog_format: _Optional[str] = ..., csv_delimiter: _Optional[str] = ..., hybrid_fusion: _Optional[str] = ..., hybrid_alpha: _Optional[float] = ..., hybrid_candidates: _Optional[int] = ...) -> None: ...
