"""RecsysClient: the friendly way to call the index and embedder services.

    with RecsysClient(index="localhost:50052") as client:
        client.wait_ready(timeout=30)
        for hit in client.search("small folding computer desk", k=5, max_price=200):
            print(hit.rank, hit.product.title, hit.score)

It owns its two channels (opened lazily by gRPC, closed by close() / the with block), gives every
call a deadline (`timeout` per client, overridable per call), lets gRPC retry UNAVAILABLE with
exponential backoff (see channels.py), returns the plain dataclasses of types.py, and raises the
exceptions of errors.py.
"""
from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from . import convert
from .address_probe import with_hidden_tls_failure
from .channels import Connectivity, RetryPolicy, channel_credentials, open_channel
from .errors import (DeadlineExceededError, InvalidArgumentError, RecsysError, from_rpc_error,
                     where_flags)
from .generated.recsys.v1 import embedder_pb2, embedder_pb2_grpc, index_pb2, index_pb2_grpc
from .types import (DeleteResult, EmbedResult, HybridParams, ModelInfo, Product,
                          ProductPage, SearchParams, SearchResult, Stats, UpsertResult)

DEFAULT_INDEX = "localhost:50052"
DEFAULT_EMBEDDER = "localhost:50051"
DEFAULT_TIMEOUT_S = 10.0
# An upsert embeds every product's text (1,000 products: seconds to a minute on a small CPU), so
# without timeout= it gets the longer of this and the client's timeout.
UPSERT_TIMEOUT_S = 120.0
INDEX_SERVICE = "recsys.v1.Index"
EMBEDDER_SERVICE = "recsys.v1.Embedder"


def _check_timeout(timeout: float) -> float:
    if not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        raise InvalidArgumentError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


class RecsysClient:
    """Client of one index service and one embedder service.

    index, embedder: gRPC targets ("host:port", "dns:///host:port"). The embedder is only used by
        embed() and model_info(); search goes through the index service, which calls the embedder.
    timeout: default deadline of every call, in seconds (upsert: at least UPSERT_TIMEOUT_S); each
        method takes `timeout=` to override.
    retry: how gRPC retries UNAVAILABLE (RetryPolicy(max_attempts=1) turns retries off).
    tls_ca: PEM file (or bytes) of the CA that signed the servers' certificates: TLS when given.
    credentials: grpc.ChannelCredentials for TLS instead of tls_ca (e.g. mutual TLS:
        `from recsys_client.access import ClientTls`, then ClientTls(ca, cert, key).credentials(),
        or grpc.ssl_channel_credentials(ca, key, cert)).
    tls_server_name: the name to check the servers' certificates against, if not the target host.
    token: sent with every call as `authorization: Bearer <token>`.
    """

    def __init__(self, index: str = DEFAULT_INDEX, embedder: str = DEFAULT_EMBEDDER, *,
                 timeout: float = DEFAULT_TIMEOUT_S, retry: RetryPolicy = RetryPolicy(),
                 tls_ca: str | bytes | Path | None = None,
                 credentials: grpc.ChannelCredentials | None = None,
                 tls_server_name: str | None = None, token: str | None = None):
        self.index_target, self.embedder_target = index, embedder
        self.timeout = _check_timeout(timeout)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        credentials = channel_credentials(tls_ca, credentials)
        security = dict(credentials=credentials, tls_server_name=tls_server_name)
        self._credentials, self._tls_server_name = credentials, tls_server_name
        self._index_channel = open_channel(index, services=[INDEX_SERVICE], retry=retry,
                                           **security)
        self._embedder_channel = open_channel(embedder, services=[EMBEDDER_SERVICE], retry=retry,
                                              **security)
        self._index = index_pb2_grpc.IndexStub(self._index_channel)
        self._embedder = embedder_pb2_grpc.EmbedderStub(self._embedder_channel)
        self._connectivity = {"index": Connectivity(self._index_channel),
                              "embedder": Connectivity(self._embedder_channel)}
        self._closed = False

    # ---- lifecycle ----

    def close(self) -> None:
        """Closes both channels (also on leaving a `with` block); later calls raise RecsysError."""
        if not self._closed:
            self._closed = True
            self._index_channel.close()
            self._embedder_channel.close()

    def __enter__(self) -> "RecsysClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"RecsysClient(index={self.index_target!r}, embedder={self.embedder_target!r}, "
                f"timeout={self.timeout})")

    def wait_ready(self, timeout: float = 30.0, *, index: bool = True,
                   embedder: bool = False) -> None:
        """Block until the services report SERVING on grpc.health.v1 (event-driven: a health
        Watch that waits for the connection), or raise DeadlineExceededError after `timeout`."""
        deadline = time.monotonic() + _check_timeout(timeout)
        if index:
            self._wait_serving("index", self.index_target, self._index_channel, deadline, timeout)
        if embedder:
            self._wait_serving("embedder", self.embedder_target, self._embedder_channel,
                               deadline, timeout)

    def _wait_serving(self, service: str, target: str, channel: grpc.Channel, deadline: float,
                      timeout: float) -> None:
        stub = health_pb2_grpc.HealthStub(channel)
        last = "no answer"
        pause = threading.Event()
        while (remaining := deadline - time.monotonic()) > 0:
            stream = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=remaining,
                                wait_for_ready=True, metadata=self._metadata)
            try:
                for reply in stream:
                    last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                                      grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise from_rpc_error(exc, service=service, target=target,
                                         method="Health.Watch") from None
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    last = "UNAVAILABLE"
            finally:
                stream.cancel()
            pause.wait(min(0.05, max(0.0, deadline - time.monotonic())))  # server went away
        raise DeadlineExceededError(
            f"the {service} service at {target} is not ready after {timeout:g}s (last health "
            f"status: {last}): is it running, and is the address right? "
            f"({where_flags(service)})", service=service, target=target)

    # ---- plumbing ----

    def _call(self, service: str, method: str, rpc, request, timeout: float | None):
        if self._closed:
            raise RecsysError("this RecsysClient is closed: make a new one")
        target = self.index_target if service == "index" else self.embedder_target
        try:
            deadline = self.timeout if timeout is None else _check_timeout(timeout)
            return rpc(request, timeout=deadline, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, service=service, target=target, method=method,
                                 unreachable=self._connectivity[service].failing,
                                 connected=self._connectivity[service].connected,
                                 probe=lambda detail: self._probe(detail, target)) from None

    def _probe(self, detail: str, target: str) -> str:
        """A connect failure's text, or the TLS failure one of `target`'s addresses shows."""
        return with_hidden_tls_failure(detail, target, self._credentials,
                                       server_name=self._tls_server_name)

    # ---- index service ----

    def search(self, query: str | None = None, k: int = 10, *,
               category: str | None = None, categories: Sequence[str] | None = None,
               brand: str | None = None, brands: Sequence[str] | None = None,
               min_price: float | None = None, max_price: float | None = None,
               mode: str = "semantic", min_score: float | None = None, offset: int = 0,
               hybrid: HybridParams | None = None, vector: Sequence[float] | None = None,
               params: SearchParams | None = None, timeout: float | None = None) -> SearchResult:
        """The k best products for `query` (or for a precomputed query `vector`, semantic mode).

        Filters are exact and combine with AND; `category` matches any level of a product's
        breadcrumb. mode: "semantic" (default), "lexical" or "hybrid". Hits scoring below
        `min_score` are dropped; `offset` skips that many hits first (pagination). `params`:
        the vector index's recall/speed for this call (HNSW ef, IVF nprobe, or exact)."""
        request = index_pb2.SearchRequest(
            query=query or "", k=k, mode=convert.mode_to_proto(mode), offset=offset,
            filter=convert.filter_to_proto(category=category, categories=categories, brand=brand,
                                           brands=brands, min_price=min_price,
                                           max_price=max_price),
            vector=list(vector) if vector is not None else [])
        if min_score is not None:
            request.min_score = min_score
        if hybrid is not None:
            request.hybrid.CopyFrom(convert.hybrid_to_proto(hybrid))
        if params is not None:
            request.params.CopyFrom(convert.search_params_to_proto(params))
        reply = self._call("index", "Search", self._index.Search, request, timeout)
        return convert.search_result_from_proto(reply)

    def similar(self, product_id: str | Sequence[str], k: int = 10, *,
                category: str | None = None, categories: Sequence[str] | None = None,
                brand: str | None = None, brands: Sequence[str] | None = None,
                min_price: float | None = None, max_price: float | None = None,
                min_score: float | None = None, offset: int = 0, params: SearchParams | None = None,
                timeout: float | None = None) -> SearchResult:
        """Products like `product_id` (never itself), with the same filters and params as
        search(). A list of ids (a basket: 1 to 100, server 0.2.0 or later): products like all of
        them, scored against the mean of their vectors, none of them returned."""
        ids = {"product_id": product_id} if isinstance(product_id, str) else \
            {"product_ids": list(product_id)}
        request = index_pb2.SimilarProductsRequest(
            **ids, k=k, offset=offset,
            filter=convert.filter_to_proto(category=category, categories=categories, brand=brand,
                                           brands=brands, min_price=min_price,
                                           max_price=max_price))
        if min_score is not None:
            request.min_score = min_score
        if params is not None:
            request.params.CopyFrom(convert.search_params_to_proto(params))
        reply = self._call("index", "SimilarProducts", self._index.SimilarProducts, request,
                           timeout)
        return convert.search_result_from_proto(reply)

    def get(self, product_id: str, *, timeout: float | None = None) -> Product:
        """One product by id; NotFoundError when there is none."""
        reply = self._call("index", "GetProduct", self._index.GetProduct,
                           index_pb2.GetProductRequest(product_id=product_id), timeout)
        return convert.product_from_proto(reply)

    def list_products_page(self, page_size: int = 100, page_token: str = "", *,
                           timeout: float | None = None) -> ProductPage:
        """One page of the catalog, in catalog order."""
        reply = self._call("index", "ListProducts", self._index.ListProducts,
                           index_pb2.ListProductsRequest(page_size=page_size,
                                                         page_token=page_token), timeout)
        return convert.page_from_proto(reply)

    def list_products(self, page_size: int = 100, *,
                      timeout: float | None = None) -> Iterator[Product]:
        """Every product of the catalog, in catalog order, fetched a page at a time (each page
        one call with its own deadline)."""
        token = ""
        while True:
            page = self.list_products_page(page_size, token, timeout=timeout)
            yield from page.products
            token = page.next_page_token
            if not token:
                return

    def upsert(self, products: Iterable[Product], *, timeout: float | None = None) -> UpsertResult:
        """Adds or replaces products by id, all or nothing; returns once the write is durable.
        Without `timeout`, the call may take the longer of the client's timeout and
        UPSERT_TIMEOUT_S (the service embeds every product's text)."""
        request = index_pb2.UpsertProductsRequest(
            products=[convert.product_to_proto(p) for p in products])
        if timeout is None:
            timeout = max(self.timeout, UPSERT_TIMEOUT_S)
        reply = self._call("index", "UpsertProducts", self._index.UpsertProducts, request, timeout)
        return convert.upsert_result_from_proto(reply)

    def delete(self, product_ids: Iterable[str], *, timeout: float | None = None) -> DeleteResult:
        """Removes products by id; unknown ids come back in `not_found`."""
        if isinstance(product_ids, str):
            product_ids = [product_ids]
        request = index_pb2.DeleteProductsRequest(product_ids=list(product_ids))
        reply = self._call("index", "DeleteProducts", self._index.DeleteProducts, request, timeout)
        return convert.delete_result_from_proto(reply)

    def stats(self, *, timeout: float | None = None) -> Stats:
        """The index service's catalog size, index type, model, hybrid defaults and log state."""
        reply = self._call("index", "GetStats", self._index.GetStats, index_pb2.GetStatsRequest(),
                           timeout)
        return convert.stats_from_proto(reply)

    # ---- embedder service ----

    def embed(self, texts: str | Sequence[str], *, normalize: bool | None = None,
              truncate: bool | None = None, timeout: float | None = None) -> EmbedResult:
        """Vectors of `texts` (one text or a list), in order, from the embedder service."""
        if isinstance(texts, str):
            texts = [texts]
        request = embedder_pb2.EmbedRequest(texts=list(texts))
        if normalize is not None:
            request.normalize = normalize
        if truncate is not None:
            request.truncate = truncate
        reply = self._call("embedder", "Embed", self._embedder.Embed, request, timeout)
        return convert.embed_result_from_proto(reply)

    def model_info(self, *, timeout: float | None = None) -> ModelInfo:
        """The embedder's model: name, dimension, backend and precision, limits."""
        reply = self._call("embedder", "GetModelInfo", self._embedder.GetModelInfo,
                           embedder_pb2.GetModelInfoRequest(), timeout)
        return convert.model_info_from_proto(reply)

