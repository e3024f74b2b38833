"""Limits a request's page is held to, shared by the search core and the start-up checks (a light
module: config.py reads it without loading FAISS or pymilvus)."""

MAX_OFFSET = 10_000        # SearchRequest / SimilarProductsRequest.offset
MILVUS_MAX_TOPK = 16_384   # Milvus's limit on one search's hits: offset + k must stay within it
