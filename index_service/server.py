"""Start the index service: health at once (NOT_SERVING), load or build the artifacts, SERVING
until SIGTERM."""
from __future__ import annotations

import logging
import sys


from client.generated.recsys.v1 import index_pb2, index_pb2_grpc
from servekit.access import client_credentials, client_token, server_access
from servekit.lifecycle import serve_until_signal, start_server
from servekit.errors import ServiceError
from servekit.metrics import serve_metrics

from .config import IndexConfig, embedder_target
from .embedder_client import EmbedderClient
from .product_writes import PRODUCTS, ProductWrites
from .search import SearchCore
from .servicer import IndexServicer
from .startup import StartupError, open_store
from .store import Store, StoreHolder
from .wal import WalError

log = logging.getLogger("index_service")

SERVICE_NAME = index_pb2.DESCRIPTOR.services_by_name["Index"].full_name  # recsys.v1.Index
# What a read-only token (--read-token-file) may call; every other method (the writes, and any RPC
# added later) needs a full-access token (--token-file). Health and reflection need none.
READ_RPCS = ("Search", "SimilarProducts", "GetProduct", "ListProducts", "GetStats")
READ_METHODS = frozenset(f"/{SERVICE_NAME}/{name}" for name in READ_RPCS)


def _log_serving(store: Store, address: str) -> None:
    try:
        stats = store.stats()
    except ServiceError as exc:  # Milvus gone again already: the health watch says so
        log.warning("serving (%s store) on %s; stats unavailable: %s", store.name, address,
                    exc.message)
        return
    PRODUCTS.set(stats["product_count"])
    log.info("serving %d products (%s store, %s index, model %s) on %s", stats["product_count"],
             store.name, stats["index_type"], stats["model_name"], address)


def _os_error_line(config: IndexConfig, exc: OSError) -> str:
    """A file-system failure at start, naming the path and the flag it came from."""
    path, reason = str(exc.filename or ""), exc.strerror or str(exc)
    if not path:
        return reason
    for flag, given in (("--embeddings", config.embeddings), ("--catalog", config.catalog),
                        ("--data-dir", config.data_dir)):
        if given and path.startswith(str(given)):
            return f"cannot use {path}: {reason} ({flag} {given})"
    return f"cannot use {path}: {reason}"


def _open_store(config: IndexConfig, embedder: EmbedderClient, health) -> Store:
    # A progress bar on a terminal; into a log file or `docker logs`, a log line now and then
    # (build.embed_all), never a bar's carriage returns.
    progress = sys.stderr.isatty()
    if config.store == "milvus":
        from .milvus.startup import open_milvus_store  # pymilvus only where it is used
        store = open_milvus_store(config, embedder, progress=progress)  # retries until it answers
        store.on_health = health.set_serving
        return store
    return open_store(config, embedder, progress=progress)  # the artifacts, the log replayed


def serve(config: IndexConfig) -> int:
    try:  # AccessError is a ValueError: every TLS/token file is checked before anything binds
        target = embedder_target(config.embedder)
        access = server_access(config.tls_cert, config.tls_key, config.tls_client_ca,
                               config.token_file, read_token_file=config.read_token_file,
                               read_methods=READ_METHODS)
        embedder_credentials = client_credentials(config.embedder_tls_ca,
                                                  config.embedder_tls_client_cert,
                                                  config.embedder_tls_client_key,
                                                  flag_prefix="--embedder-")
        embedder_token = client_token(config.embedder_token_file, access.token)
    except ValueError as exc:
        print(f"index_service: {exc}", file=sys.stderr)
        return 2
    embedder = EmbedderClient(target, display=config.embedder, timeout_s=config.embed_timeout_s,
                              cache_size=config.query_cache_size,
                              max_message_bytes=config.max_message_bytes,
                              credentials=embedder_credentials, token=embedder_token)
    holder = StoreHolder()
    core = SearchCore(holder, embedder, max_k=config.max_k,
                      max_batch_products=config.max_batch_products, hybrid=config.hybrid)
    servicer = IndexServicer(core, ProductWrites(holder, embedder,
                                                 max_batch_products=config.max_batch_products,
                                                 embed_timeout_s=config.build_timeout_s))
    server, health, port = start_server(
        service_name=SERVICE_NAME, address=config.address, credentials=access.credentials,
        add_servicer=lambda s: index_pb2_grpc.add_IndexServicer_to_server(servicer, s),
        interceptors=access.interceptors, max_workers=config.grpc_workers,
        max_message_bytes=config.max_message_bytes, max_concurrent_rpcs=config.max_concurrent_rpcs,
        on_reload=access.reload)
    access.watch(config.token_reload_s)
    log.info("listening on %s:%d, %s (NOT_SERVING while the index loads or builds)", config.host,
             port, access.describe())
    serve_metrics(config.metrics_port, config.host)

    try:
        store = _open_store(config, embedder, health)
    except (StartupError, WalError, ValueError, OSError) as exc:  # OSError: disk full, read-only...
        print(f"index_service: {_os_error_line(config, exc) if isinstance(exc, OSError) else exc}",
              file=sys.stderr)
        server.stop(0)
        embedder.close()
        return 2
    holder.set(store)
    store.start()  # compaction (FAISS) or health following Milvus, in the background

    def on_ready():
        health.set_serving(True)
        _log_serving(store, f"{config.host}:{port}")

    def on_stop():
        store.close()  # FAISS: compacts the log into fresh artifacts, then closes it
        embedder.close()

    serve_until_signal(server, health, grace_s=config.grace_s, on_stop=on_stop, on_ready=on_ready)
    return 0
