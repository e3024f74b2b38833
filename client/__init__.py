"""recsys client: RecsysClient, the plain result types, the errors, and the `recsys` CLI.

    from client import RecsysClient
    with RecsysClient("localhost:50052") as client:
        print(client.search("blue metal cafe table", k=5).hits[0].product.title)
"""
from client.channels import NO_RETRY, RetryPolicy
from client.errors import (CancelledError, DeadlineExceededError, FailedPreconditionError,
                           InvalidArgumentError, NotFoundError, PermissionDeniedError, RecsysError,
                           ResourceExhaustedError, ServerError, UnauthenticatedError,
                           UnavailableError, UnimplementedError)
from client.recsys_client import DEFAULT_EMBEDDER, DEFAULT_INDEX, RecsysClient
from client.types import (MODES, DeleteResult, EmbedResult, EmbedTiming, Embedding, Hit,
                          HybridParams, ModelInfo, Product, ProductPage, SearchParams, SearchResult,
                          SearchTiming, Stats, UpsertResult)

__all__ = [
    "RecsysClient", "RetryPolicy", "NO_RETRY", "DEFAULT_INDEX", "DEFAULT_EMBEDDER", "MODES",
    "Product", "Hit", "SearchResult", "SearchTiming", "HybridParams", "SearchParams", "ProductPage",
    "UpsertResult", "DeleteResult", "Stats", "ModelInfo", "Embedding", "EmbedResult",
    "EmbedTiming",
    "RecsysError", "InvalidArgumentError", "NotFoundError", "UnavailableError",
    "ResourceExhaustedError", "DeadlineExceededError", "UnauthenticatedError",
    "PermissionDeniedError", "FailedPreconditionError", "UnimplementedError", "ServerError",
    "CancelledError",
]
