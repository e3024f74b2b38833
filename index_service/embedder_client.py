"""The index service's channel to the embedder, and its query-vector cache.

- Every call has a deadline; an unreachable or slow embedder becomes `Unavailable` naming the
  embedder's address, within the call's deadline (wait_for_ready=False: fail fast while the
  channel reconnects).
- The channel is never given up on: gRPC reconnects by itself (backoff capped at 1 s), so a call
  after the embedder returns succeeds with no restart.
- Several embedders: round-robin load balancing over the target's addresses (config.embedder_target).
- Optional TLS (`credentials`) and a shared token on every call (`token`), for an embedder that
  requires them. A connection that cannot be made says why where grpc-core's text shows it (TLS
  on one side only, a client certificate refused, another CA...), naming our --embedder-* flags.
- A bounded LRU cache of normalized query vectors (hits/misses in Prometheus and in GetStats).
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from typing import NamedTuple

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import Counter

from client.connect_failures import is_connect_failure
from client.generated.recsys.v1 import embedder_pb2, embedder_pb2_grpc
from servekit.auth import with_token
from servekit.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted, Unavailable

from .embedder_diagnosis import no_connection, why_not_serving
from .vectors import normalize

CACHE_HITS = Counter("index_query_cache_hits_total", "Query vectors served from the cache")
CACHE_MISSES = Counter("index_query_cache_misses_total", "Query vectors that needed the embedder")
EMBED_CALLS = Counter("index_embed_calls_total", "Embed calls to the embedder, by outcome", ["code"])

_WHITESPACE = re.compile(r"\s+")
_SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


class EmbedderModel(NamedTuple):
    """What the embedder serves. (model_name, dimension) decide whether stored vectors are
    compatible; backend and precision ("" from an embedder that does not say) do not."""
    model_name: str
    dimension: int
    backend: str = ""
    precision: str = ""


class QueryCache:
    """Thread-safe LRU of query text -> vector."""

    def __init__(self, size: int):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: str) -> np.ndarray | None:
        if self.size == 0:
            return None
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
        (CACHE_HITS if value is not None else CACHE_MISSES).inc()
        return value

    def put(self, key: str, value: np.ndarray) -> None:
        if self.size == 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def fit_text(text: str, max_chars: int | None) -> str:
    """`text` within max_chars characters: a longer one has its runs of whitespace made single
    spaces (the tokenizer splits words at any run alike), then is cut. The model reads its first
    max_seq_length (256) tokens only, about 1,500 characters of ordinary text: a cut at the
    embedder's default 20,000 lies far past them and leaves the vector as it was."""
    if max_chars is None or len(text) <= max_chars:
        return text
    return _WHITESPACE.sub(" ", text)[:max_chars]


class EmbedderClient:
    def __init__(self, target: str, *, display: str, timeout_s: float, cache_size: int,
                 max_message_bytes: int = 64 * 1024 * 1024,
                 credentials: grpc.ChannelCredentials | None = None, token: str | None = None):
        self.target, self.display, self.timeout_s = target, display, timeout_s
        self._credentials = credentials
        self.cache = QueryCache(cache_size)
        # The embedder's limits (ModelInfo), once model_info() has been asked: see embed().
        self.max_chars_per_text: int | None = None
        self.max_texts_per_request: int | None = None
        options = [
            ("grpc.service_config", _SERVICE_CONFIG),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
            ("grpc.enable_retries", 0),
        ]
        self._raw_channel = (grpc.secure_channel(target, credentials, options=options) if credentials
                             else grpc.insecure_channel(target, options=options))
        self._channel = with_token(self._raw_channel, token)
        self._stub = embedder_pb2_grpc.EmbedderStub(self._channel)

    def close(self) -> None:
        self._raw_channel.close()

    def _error(self, exc: grpc.RpcError, what: str, limit_s: float | None = None,
               callers: bool = False):
        """The service error for a failed embedder call that was allowed `limit_s` seconds;
        `callers`: that limit was what our caller's deadline left."""
        code = exc.code()
        EMBED_CALLS.labels(code.name).inc()
        detail = exc.details() or code.name
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return InvalidArgument(f"the embedder rejected the {what}: {detail}")
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return ResourceExhausted(f"the embedder at {self.display} is overloaded: {detail}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            late = f"the embedder at {self.display} did not answer in time ({what})"
            if limit_s is None:
                return Unavailable(late)
            if callers:  # the caller's deadline, not the embedder, was the limit: not retryable
                return DeadlineExceeded(f"{late}: the call's deadline left it "
                                        f"{limit_s * 1000:.0f} ms; allow the call more time")
            return Unavailable(f"{late}: {limit_s:g} s allowed")
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return Unavailable(f"the embedder at {self.display} refused the index service's token "
                               f"({detail}): check --embedder-token-file / --token-file")
        if code == grpc.StatusCode.UNAVAILABLE and is_connect_failure(detail):
            return Unavailable(f"the embedder at {self.display} cannot be reached: "
                               f"{no_connection(detail, self.target, self._credentials)}")
        return Unavailable(f"the embedder at {self.display} is unavailable ({code.name}: {detail})")

    def why_not_serving(self, timeout: float = 2.0) -> str:
        """Why a wait for the embedder timed out (index_service.embedder_diagnosis)."""
        return why_not_serving(self._channel, self.target, self._credentials, timeout)

    def wait_serving(self, timeout: float) -> None:
        """Block until the embedder's health says SERVING (a Watch stream: no polling), or raise
        Unavailable after `timeout` seconds."""
        stream = health_pb2_grpc.HealthStub(self._channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=timeout, wait_for_ready=True)
        try:
            for reply in stream:
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return  # an embedder without health: GetModelInfo will tell
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise Unavailable(f"the embedder at {self.display} was not SERVING within "
                                  f"{timeout:g} s: {self.why_not_serving()}") from None
            raise self._error(exc, "health check") from None
        finally:
            stream.cancel()
        raise Unavailable(f"the embedder at {self.display} stopped before it was SERVING")

    def model_info(self, *, timeout: float, wait_for_ready: bool = False) -> "EmbedderModel":
        """(model_name, dimension, backend, precision); waits up to `timeout` for the embedder
        when wait_for_ready."""
        try:
            info = self._stub.GetModelInfo(embedder_pb2.GetModelInfoRequest(), timeout=timeout,
                                           wait_for_ready=wait_for_ready)
        except grpc.RpcError as exc:
            raise self._error(exc, "model info request") from None
        self.max_chars_per_text = int(info.max_chars_per_text) or None
        self.max_texts_per_request = int(info.max_texts_per_request) or None
        return EmbedderModel(info.model_name, int(info.dimension), info.backend, info.precision)

    def embed(self, texts: list[str], *, timeout: float | None = None, what: str = "texts",
              callers: bool = False) -> np.ndarray:
        """Normalized float32 vectors, one row per text, in order, within `timeout` seconds
        (None: --embed-timeout-s); `callers`: the timeout is what our caller's deadline left.
        Within the embedder's limits (known once model_info has been asked): a text longer than
        its max_chars_per_text is cut (fit_text), more texts than its max_texts_per_request go
        in several calls, one after the other, within the same `timeout`."""
        limit = timeout or self.timeout_s
        texts = [fit_text(t, self.max_chars_per_text) for t in texts]
        step = self.max_texts_per_request or max(1, len(texts))
        deadline = time.monotonic() + limit
        parts = [self._embed_call(texts[i:i + step], max(0.001, deadline - time.monotonic()),
                                  what, callers and timeout is not None)
                 for i in range(0, len(texts), step) or [0]]  # none: the embedder says why
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _embed_call(self, texts: list[str], limit: float, what: str, callers: bool) -> np.ndarray:
        try:
            reply = self._stub.Embed(embedder_pb2.EmbedRequest(texts=texts, normalize=True),
                                     timeout=limit, wait_for_ready=False)
        except grpc.RpcError as exc:
            raise self._error(exc, what, limit, callers) from None
        EMBED_CALLS.labels("OK").inc()
        if len(reply.embeddings) != len(texts):
            raise Unavailable(f"the embedder at {self.display} answered {len(reply.embeddings)} "
                              f"vectors for {len(texts)} texts")
        return normalize(np.array([e.values for e in reply.embeddings], dtype=np.float32))

    def query_vector(self, text: str, *, timeout: float | None = None) -> tuple[np.ndarray, bool]:
        """(vector, came_from_cache) for one query text."""
        cached = self.cache.get(text)
        if cached is not None:
            return cached, True
        deadline = self.timeout_s if timeout is None else max(0.001, min(self.timeout_s, timeout))
        vector = self.embed([text], timeout=deadline, what="query",
                            callers=timeout is not None and timeout < self.timeout_s)[0]
        vector.setflags(write=False)
        self.cache.put(text, vector)
        return vector, False
