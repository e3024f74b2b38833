"""recsys.v1.Index transport: proto in -> SearchCore / ProductWrites -> proto out. No ranking logic here."""
from __future__ import annotations

import functools
import time

from client.generated.recsys.v1 import index_pb2, index_pb2_grpc
from servekit.deadlines import remaining_s

from .filters import from_proto as filter_from_proto
from .product_writes import ProductWrites
from .search import Ranking, SearchCore
from .store import call_deadline

# Time kept back from the caller's deadline so that our answer (an error that says what ran
# out of time) arrives before it: this share of the time left, at most DEADLINE_MARGIN_S, so
# that a short deadline (30 ms for a query that embeds in 7) still leaves the work most of it;
# 100 ms: a call bounded inside pymilvus answered 30-40 ms before a 2 s deadline, too close.
DEADLINE_MARGIN_S = 0.1
DEADLINE_MARGIN_SHARE = 0.2


def _timeout(context) -> float | None:
    """The caller's remaining time, less a margin so that our answer arrives before it."""
    remaining = remaining_s(context)
    if remaining is None:
        return None
    return max(0.001, remaining - min(DEADLINE_MARGIN_S, DEADLINE_MARGIN_SHARE * remaining))


def _bounded(rpc):
    """The handler runs with the caller's deadline (store.time_left): a store waiting on a server
    answers UNAVAILABLE before the caller gives up."""
    @functools.wraps(rpc)
    def handler(self, request, context):
        with call_deadline(_timeout(context)):
            return rpc(self, request, context)
    return handler


def _optional(message, name: str):
    return getattr(message, name) if message.HasField(name) else None


def _overrides(request) -> dict:
    """The request's VectorSearchParams, validated, as VectorIndex.search overrides."""
    if not request.HasField("params"):
        return {}
    p = request.params
    return SearchCore.vector_overrides(_optional(p, "hnsw_ef"), _optional(p, "ivf_nprobe"), p.exact)


class IndexServicer(index_pb2_grpc.IndexServicer):
    def __init__(self, core: SearchCore, writes: ProductWrites):
        self.core, self.writes = core, writes

    @staticmethod
    def _response(ranking: Ranking, started: float) -> index_pb2.SearchResponse:
        # Hits as dicts: protobuf builds each Product in place, where Hit(product=Product(...))
        # would build it, then copy it (half the cost of a 10-hit reply).
        hits = [{"product": product, "score": score, "rank": rank}
                for rank, (product, score) in enumerate(zip(ranking.products,
                                                            ranking.scores.tolist()),
                                                        start=ranking.offset + 1)]
        timing = index_pb2.SearchTiming(embed_us=ranking.embed_us, search_us=ranking.search_us,
                                        total_us=int((time.perf_counter() - started) * 1e6))
        return index_pb2.SearchResponse(hits=hits, timing=timing, query_vector_cached=ranking.cached)

    @_bounded
    def Search(self, request, context):
        started = time.perf_counter()
        timeout = _timeout(context)
        hybrid = None
        if request.HasField("hybrid"):
            h = request.hybrid
            hybrid = self.core.hybrid_params(
                _optional(h, "rrf_k"), _optional(h, "semantic_weight"), _optional(h, "lexical_weight"),
                fusion=int(h.fusion), alpha=_optional(h, "alpha"),
                candidates=_optional(h, "candidates"))
        ranking = self.core.search(
            query=request.query, vector=list(request.vector), k=request.k,
            spec=filter_from_proto(request.filter if request.HasField("filter") else None),
            mode=int(request.mode), min_score=_optional(request, "min_score"), offset=request.offset,
            hybrid=hybrid, timeout=timeout, overrides=_overrides(request))
        return self._response(ranking, started)

    @_bounded
    def SimilarProducts(self, request, context):
        started = time.perf_counter()
        ranking = self.core.similar(
            product_id=request.product_id, k=request.k,
            spec=filter_from_proto(request.filter if request.HasField("filter") else None),
            min_score=_optional(request, "min_score"), offset=request.offset,
            overrides=_overrides(request), product_ids=request.product_ids)
        return self._response(ranking, started)

    @_bounded
    def GetProduct(self, request, context):
        return index_pb2.Product(**self.core.get(request.product_id))

    @_bounded
    def ListProducts(self, request, context):
        page = self.core.list(request.page_size, request.page_token)
        return index_pb2.ListProductsResponse(products=page.products,
                                              next_page_token=page.next_page_token,
                                              total_count=page.total_count)

    @_bounded
    def GetStats(self, request, context):
        return index_pb2.Stats(**self.core.stats())

    @_bounded
    def UpsertProducts(self, request, context):
        result = self.writes.upsert(list(request.products), _timeout(context))
        return index_pb2.UpsertProductsResponse(upserted=result.count,
                                                product_count=result.product_count,
                                                sequence=result.sequence)

    @_bounded
    def DeleteProducts(self, request, context):
        result = self.writes.delete(list(request.product_ids))
        return index_pb2.DeleteProductsResponse(deleted=result.count,
                                                not_found=list(result.not_found),
                                                product_count=result.product_count,
                                                sequence=result.sequence)
