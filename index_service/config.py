"""IndexConfig: every setting of the index service, from flags with INDEX_* environment fallbacks.

Read once at start (`IndexConfig.from_args()`); handlers never read the environment.
Precedence: command-line flag > environment variable INDEX_<NAME> > default.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from servekit.flags import common_problem, config_from_args
from servekit.targets import grpc_target, target_problem

from .catalog_files.base import delimiter_option
from .fusion import FUSIONS, MAX_CANDIDATES, HybridDefaults
from .search_limits import MAX_OFFSET, MILVUS_MAX_TOPK

MIB = 1024 * 1024
INDEX_TYPES = ("flat", "hnsw", "ivf")
STORES = ("faiss", "milvus")
MILVUS_INDEX_TYPES = ("hnsw", "flat")
MILVUS_CONSISTENCY = ("Session", "Bounded", "Strong")

# name -> help; the type and default come from the dataclass field.
_HELP = {
    "port": "gRPC port",
    "host": "interface to listen on (0.0.0.0 in containers)",
    "embedder": "embedder address HOST:PORT, several comma-separated (round-robin), or a dns:/// target",
    "store": "where the catalog lives: faiss (in this process, --data-dir) or milvus (a Milvus "
             "server or cluster, --milvus-uri; replicas share it)",
    "catalog": "product catalog file (required): .csv (.tsv, .txt), .jsonl (.ndjson) or .parquet",
    "data_dir": "directory for the artifacts (required with --store faiss)",
    "columns": "map catalog columns onto ours, e.g. id=item_id,title=name; "
               "categories=category>sub_category>type builds the breadcrumb from several columns",
    "csv_delimiter": "delimiter of a CSV catalog: auto (detect from the header and first lines), "
                     "',', ';', tab (or \\t) or '|'",
    "embeddings": "import precomputed embeddings (.npy, one row per catalog row) instead of embedding",
    "index_type": "vector index: flat (exact), hnsw or ivf",
    "hnsw_m": "HNSW graph degree (build; 32 with --hnsw-ef-construction 200 builds a better graph "
              "2-5x slower)",
    "hnsw_ef_construction": "HNSW build breadth",
    "hnsw_ef_search": "HNSW search breadth (raised to k when k is larger; no rebuild to change). "
                      "With M 16 / efC 64, recall@10 0.97 at 100k products; 1024 for 0.95 at 1M",
    "ivf_nlist": "IVF clusters (build); 0 = 4*sqrt(N), at most 1024 (training time on few cores)",
    "ivf_nprobe": "IVF clusters visited per search (recall@10 0.95 at 100k, 0.98 at 1M with 1024 "
                  "lists; 16 gave 0.71 at 100k)",
    "faiss_threads": "OpenMP threads of one FAISS search call; 0 = OpenMP's default (every core). "
                     "Concurrent calls already share the cores; builds always use every core",
    "on_model_change": "artifacts built with another model than the embedder's: refuse (default) or rebuild",
    "on_catalog_change": "a changed catalog file or mapping while the artifacts hold live writes, "
                         "which a rebuild drops: refuse (default) or rebuild",
    "metrics_port": "Prometheus /metrics port; 0 = off",
    "max_k": "largest k a search may ask for",
    "max_batch_products": "most products in one UpsertProducts call",
    "query_cache_size": "query vectors kept in the LRU cache; 0 = no cache",
    "embed_timeout_s": "deadline of one query-embedding call (shortened to the caller's deadline)",
    "embedder_wait_s": "at start, how long to wait for the embedder to answer",
    "build_batch_size": "texts per Embed call while building",
    "build_concurrency": "Embed calls in flight while building",
    "build_timeout_s": "deadline of one Embed call while building, and of an upsert's Embed "
                       "call when the upsert has no deadline of its own",
    "max_concurrent_rpcs": "calls in flight; more get RESOURCE_EXHAUSTED",
    "grpc_workers": "gRPC worker threads",
    "max_message_bytes": "largest gRPC message",
    "grace_s": "seconds SIGTERM waits for in-flight calls",
    "compact_every_writes": "fold the write-ahead log into fresh artifacts every N writes; 0 = never",
    "compact_every_bytes": "... or once the log holds N bytes; 0 = never (always at clean shutdown)",
    "compact_after_s": "... or once the oldest logged write is S seconds old (lexical search finds "
                       "new words after that), waiting 10x the last compaction's time; 0 = never",
    "log_level": "logging level",
    "tls_cert": "TLS certificate chain (PEM) to serve TLS; with --tls-key (empty: RECSYS_TLS_CERT)",
    "tls_key": "TLS private key (PEM) of --tls-cert (empty: RECSYS_TLS_KEY)",
    "tls_client_ca": "require client certificates signed by this CA (PEM): mutual TLS "
                     "(empty: RECSYS_TLS_CLIENT_CA)",
    "token_file": "file of full-access tokens (one per line, '#' comments): every call may carry "
                  "one; health stays open (empty: no check; the client's RECSYS_TOKEN_FILE / RECSYS_TOKEN "
                  "are refused here)",
    "read_token_file": "file of read-only tokens (one per line): Search, SimilarProducts, "
                       "GetProduct, ListProducts, GetStats only; needs --token-file",
    "token_reload_s": "check the token files every N seconds and reload them when changed "
                      "(SIGHUP reloads at once); 0 = on SIGHUP only",
    "embedder_tls_ca": "call the embedder over TLS, trusting this CA (PEM); empty: plaintext",
    "embedder_tls_client_cert": "client certificate (PEM) for an embedder that requires mutual TLS",
    "embedder_tls_client_key": "private key (PEM) of --embedder-tls-client-cert",
    "embedder_token_file": "file holding the embedder's token; empty: this service's own token",
    "milvus_uri": "Milvus endpoint, e.g. http://milvus:19530 (a cluster's proxy or Zilliz Cloud)",
    "milvus_token": "Milvus credentials, 'user:password' or an API key (prefer --milvus-token-file)",
    "milvus_token_file": "file holding --milvus-token",
    "milvus_collection": "the collection holding the products (created and filled on first start)",
    "milvus_consistency": "Session (read-your-writes on this replica; other replicas within "
                          "~0.2 s), Bounded (staleness up to Milvus's bound, 5 s by default) or "
                          "Strong (every write, ~200 ms per query on Milvus 2.3)",
    "milvus_index_type": "the vector index of a collection this replica creates: hnsw (uses "
                         "--hnsw-m, --hnsw-ef-construction, --hnsw-ef-search) or flat (exact); "
                         "an existing collection's must match",
    "milvus_timeout_s": "deadline of one Milvus call (shortened to the caller's deadline)",
    "milvus_retry_s": "at start, seconds between attempts to reach Milvus (retried until it answers)",
    "hybrid_fusion": "how MODE_HYBRID fuses the semantic and lexical rankings when a request "
                     "leaves HybridParams.fusion unset: rrf (reciprocal rank fusion) or weighted "
                     "(alpha x semantic + (1 - alpha) x lexical, min-max normalized scores); "
                     "`recsys evaluate --sweep-fusion` finds the best for a catalog",
    "hybrid_alpha": "weighted fusion's semantic weight, 0 to 1, when a request leaves "
                    "HybridParams.alpha unset",
    "hybrid_candidates": "rows hybrid search takes from each ranking when a request leaves "
                         f"HybridParams.candidates unset, 1 to {MAX_CANDIDATES}; 0 = the whole "
                         "filtered ranking up to 1000 products, else max(1000, 10 x (offset + k))",
}


def env_var(name: str) -> str:
    """INDEX_<NAME>; `index_type` -> INDEX_TYPE (not INDEX_INDEX_TYPE)."""
    return "INDEX_" + name.upper().removeprefix("INDEX_")


@dataclass(frozen=True)
class IndexConfig:
    port: int = 50052
    host: str = "127.0.0.1"
    embedder: str = "127.0.0.1:50051"
    store: str = "faiss"
    catalog: str = ""
    data_dir: str = ""
    columns: str = ""
    csv_delimiter: str = "auto"
    embeddings: str = ""
    index_type: str = "flat"
    hnsw_m: int = 16
    hnsw_ef_construction: int = 64
    hnsw_ef_search: int = 256
    ivf_nlist: int = 0
    ivf_nprobe: int = 64
    faiss_threads: int = 1
    on_model_change: str = "refuse"
    on_catalog_change: str = "refuse"
    metrics_port: int = 0
    max_k: int = 1000
    max_batch_products: int = 1000
    query_cache_size: int = 10000
    embed_timeout_s: float = 5.0
    embedder_wait_s: float = 120.0
    build_batch_size: int = 64
    build_concurrency: int = 4
    build_timeout_s: float = 300.0
    max_concurrent_rpcs: int = 256
    grpc_workers: int = 32
    max_message_bytes: int = 64 * MIB
    grace_s: float = 10.0
    compact_every_writes: int = 1000
    compact_every_bytes: int = 64 * MIB
    compact_after_s: float = 60.0
    log_level: str = "INFO"
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    token_file: str = ""
    read_token_file: str = ""
    token_reload_s: float = 5.0
    embedder_tls_ca: str = ""
    embedder_tls_client_cert: str = ""
    embedder_tls_client_key: str = ""
    embedder_token_file: str = ""
    milvus_uri: str = "http://127.0.0.1:19530"
    milvus_token: str = ""
    milvus_token_file: str = ""
    milvus_collection: str = "recsys_products"
    milvus_consistency: str = "Session"
    milvus_index_type: str = "hnsw"
    milvus_timeout_s: float = 5.0
    milvus_retry_s: float = 2.0
    hybrid_fusion: str = "rrf"
    hybrid_alpha: float = 0.5
    hybrid_candidates: int = 0

    @classmethod
    def from_args(cls, argv: list[str] | None = None,
                  environ: dict[str, str] | None = None) -> "IndexConfig":
        return config_from_args(
            cls, prog="python -m index_service", env_name=env_var, help=_HELP, argv=argv,
            environ=environ,
            description="recsys.v1.Index gRPC server: a product catalog, its FAISS index, search and "
                        "similar products. Every flag falls back to the environment variable INDEX_<FLAG>.")

    def problem(self) -> str | None:
        """What is wrong with these settings, or None (every check, whatever the store)."""
        for check in (lambda: common_problem(self), self._required_problem, self._hybrid_problem,
                      self._store_problem, self._limits_problem):
            found = check()
            if found:
                return found
        return None

    def _required_problem(self) -> str | None:
        if not self.catalog:
            return "--catalog (or INDEX_CATALOG) is required"
        if self.store not in STORES:
            return f"--store must be one of {', '.join(STORES)}, got {self.store!r}"
        if self.store == "faiss" and not self.data_dir:
            return "--data-dir (or INDEX_DATA_DIR) is required with --store faiss"
        if delimiter_option(self.csv_delimiter) is None:
            return (f"--csv-delimiter must be auto, ',', ';', tab (or \\t) or '|', got "
                    f"{self.csv_delimiter!r}")
        return target_problem(self.embedder, "--embedder")

    def _store_problem(self) -> str | None:
        if self.store == "milvus":
            return self._milvus_problem()
        if self.index_type not in INDEX_TYPES:
            return f"--index-type must be one of {', '.join(INDEX_TYPES)}, got {self.index_type!r}"
        if self.on_model_change not in ("refuse", "rebuild"):
            return f"--on-model-change must be refuse or rebuild, got {self.on_model_change!r}"
        if self.on_catalog_change not in ("refuse", "rebuild"):
            return f"--on-catalog-change must be refuse or rebuild, got {self.on_catalog_change!r}"
        return None

    def _limits_problem(self) -> str | None:
        for name in ("max_k", "max_batch_products", "build_batch_size", "build_concurrency",
                     "max_concurrent_rpcs", "grpc_workers", "max_message_bytes", "hnsw_m",
                     "hnsw_ef_construction", "hnsw_ef_search", "ivf_nprobe"):
            if getattr(self, name) < 1:
                return f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
        for name in ("query_cache_size", "ivf_nlist", "faiss_threads", "embed_timeout_s",
                     "embedder_wait_s", "build_timeout_s", "grace_s", "compact_every_writes",
                     "compact_every_bytes", "compact_after_s", "token_reload_s"):
            if getattr(self, name) < 0:
                return f"--{name.replace('_', '-')} must not be negative"
        if self.embed_timeout_s == 0 or self.build_timeout_s == 0:
            return "--embed-timeout-s and --build-timeout-s must be > 0"
        if not 0 <= self.port <= 65535 or not 0 <= self.metrics_port <= 65535:
            return "ports must be in 0..65535"
        return None

    def _hybrid_problem(self) -> str | None:
        if self.hybrid_fusion not in FUSIONS:
            return f"--hybrid-fusion must be one of {', '.join(FUSIONS)}, got {self.hybrid_fusion!r}"
        if not (math.isfinite(self.hybrid_alpha) and 0 <= self.hybrid_alpha <= 1):
            return f"--hybrid-alpha must be a number from 0 to 1, got {self.hybrid_alpha}"
        if not 0 <= self.hybrid_candidates <= MAX_CANDIDATES:
            return (f"--hybrid-candidates must be between 0 (automatic) and {MAX_CANDIDATES}, got "
                    f"{self.hybrid_candidates}")
        return None

    @property
    def hybrid(self) -> HybridDefaults:
        """What a hybrid search gets for the HybridParams fields it leaves unset."""
        return HybridDefaults(self.hybrid_fusion, self.hybrid_alpha, self.hybrid_candidates)

    def _milvus_problem(self) -> str | None:
        if self.milvus_consistency not in MILVUS_CONSISTENCY:
            return (f"--milvus-consistency must be one of {', '.join(MILVUS_CONSISTENCY)}, got "
                    f"{self.milvus_consistency!r}")
        if self.milvus_index_type not in MILVUS_INDEX_TYPES:
            return (f"--milvus-index-type must be one of {', '.join(MILVUS_INDEX_TYPES)}, got "
                    f"{self.milvus_index_type!r}")
        if not self.milvus_collection.replace("_", "").isalnum() or \
                not self.milvus_collection[0].isalpha():
            return (f"--milvus-collection must start with a letter and hold only letters, digits "
                    f"and '_', got {self.milvus_collection!r}")
        if self.milvus_timeout_s <= 0 or self.milvus_retry_s <= 0:
            return "--milvus-timeout-s and --milvus-retry-s must be > 0"
        if self.milvus_token and self.milvus_token_file:
            return "give --milvus-token or --milvus-token-file, not both"
        if self.max_k + MAX_OFFSET > MILVUS_MAX_TOPK:
            return (f"--max-k {self.max_k}: with offsets up to {MAX_OFFSET}, a page could need "
                    f"{self.max_k + MAX_OFFSET} hits, over the {MILVUS_MAX_TOPK} one Milvus "
                    f"search returns: use --max-k {MILVUS_MAX_TOPK - MAX_OFFSET} or less")
        return None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def index_params(self) -> dict:
        if self.index_type == "hnsw":
            return {"m": self.hnsw_m, "ef_construction": self.hnsw_ef_construction,
                    "ef_search": self.hnsw_ef_search}
        if self.index_type == "ivf":
            return {"nlist": self.ivf_nlist, "nprobe": self.ivf_nprobe}
        return {}


def embedder_target(spec: str) -> str:
    """--embedder -> a gRPC target (servekit.targets.grpc_target: one address or a URI target as
    is; several comma-separated addresses -> an `ipv4:` list, balanced round-robin)."""
    return grpc_target(spec, "--embedder")
