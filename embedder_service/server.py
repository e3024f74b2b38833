"""Start the embedder: serve health at once, load and warm the model, then SERVING until SIGTERM."""
from __future__ import annotations

import logging

from client.generated.recsys.v1 import embedder_pb2, embedder_pb2_grpc
from servekit.access import AccessError, server_access
from servekit.errors import StartError
from servekit.lifecycle import serve_until_signal, start_server
from servekit.metrics import serve_metrics

from .backend import Backend, SentenceTransformerBackend
from .batcher import Batcher
from .config import EmbedderConfig
from .precision import choose, cpu_features
from .servicer import EmbedderServicer

log = logging.getLogger("embedder_service")

SERVICE_NAME = embedder_pb2.DESCRIPTOR.services_by_name["Embedder"].full_name  # recsys.v1.Embedder


def make_backend(config: EmbedderConfig) -> Backend:
    """The configured backend at the precision this CPU supports (--precision auto: bf16 where
    it is native); the decision is logged."""
    features = cpu_features(config.cpu_features)
    if config.backend == "openvino":
        from .openvino_backend import OpenVINOBackend, bf16_capable, import_openvino
        decision = choose(config.precision, features, bf16_capable(import_openvino()), "OpenVINO")
    else:
        decision = choose(config.precision, features)
    log.info("backend %s, precision %s: %s", config.backend, decision.precision, decision.reason)
    if config.backend == "openvino":
        return OpenVINOBackend(config.model, config.torch_threads, decision.precision,
                               config.cache_dir, config.openvino_threads)
    return SentenceTransformerBackend(config.model, config.torch_threads, decision.precision)


def load_backend(config: EmbedderConfig) -> tuple[Backend, Batcher]:
    """Load the model, start the batcher, and warm both with one encode through the queue."""
    backend = make_backend(config)
    batcher = Batcher(backend, max_batch_size=config.max_batch_size,
                      max_batch_tokens=config.max_batch_tokens,
                      batch_overhead_tokens=config.batch_overhead_tokens,
                      max_batch_wait_ms=config.max_batch_wait_ms, max_queue_texts=config.max_queue_texts)
    warm = batcher.submit(backend.tokenize(["warm up the model"]))
    warm.wait(None)
    if warm.error is not None:
        raise SystemExit(f"warm-up encode failed: {warm.error}")
    return backend, batcher


def _start(config: EmbedderConfig, servicer: EmbedderServicer):
    """Check the TLS/token files, bind, serve health (NOT_SERVING) and /metrics. A file, port or
    metrics port that cannot be used: SystemExit with one line `embedder_service: ...` (exit 1)."""
    try:  # every TLS/token file is read and checked before anything binds
        access = server_access(config.tls_cert, config.tls_key, config.tls_client_ca,
                               config.token_file)
        server, health, port = start_server(
            service_name=SERVICE_NAME, address=config.address, credentials=access.credentials,
            add_servicer=lambda s: embedder_pb2_grpc.add_EmbedderServicer_to_server(servicer, s),
            interceptors=access.interceptors, max_workers=config.grpc_workers,
            max_message_bytes=config.max_message_bytes, on_reload=access.reload)
    except (AccessError, StartError) as exc:
        raise SystemExit(f"embedder_service: {exc}") from None
    access.watch(config.token_reload_s)
    log.info("listening on %s:%d, %s (NOT_SERVING while the model loads)", config.host, port,
             access.describe())
    try:
        serve_metrics(config.metrics_port, config.host)
    except StartError as exc:
        server.stop(0)
        raise SystemExit(f"embedder_service: {exc}") from None
    return server, health, port


def serve(config: EmbedderConfig) -> None:
    servicer = EmbedderServicer(config)
    server, health, port = _start(config, servicer)
    try:
        backend, batcher = load_backend(config)
    except BaseException:
        server.stop(0)  # no lingering listener when the model cannot load
        raise
    servicer.attach(backend, batcher)

    def on_ready():
        health.set_serving(True)
        log.info("serving %s (dim %d, max_seq_length %d, backend %s %s) on %s:%d",
                 backend.model_name, backend.dimension, backend.max_seq_length,
                 backend.backend_name, backend.precision, config.host, port)

    serve_until_signal(server, health, grace_s=config.grace_s, on_stop=batcher.stop,
                       on_ready=on_ready)
