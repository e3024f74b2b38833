"""recsys client: RecsysClient, the plain result types, the errors, and the `recsys` CLI.

    from recsys_client import RecsysClient       # installed: pip install ./client
    with RecsysClient("localhost:50052") as client:
        print(client.search("blue metal cafe table", k=5).hits[0].product.title)

One folder, two import names: installed as the distribution recsys-client it is the package
`recsys_client` (what users import); inside this repository it is the package `client` (what the
repository's own code imports). Modules import each other relatively, so both work.

The names below are imported on first use (PEP 562), so that importing the generated stubs
(`client.generated.recsys.v1`, as both servers do) loads nothing of the friendly client.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# The distribution's version (client/pyproject.toml reads it from here). The major version is the
# contract's: 1.x speaks recsys.v1 (docs/client.md#versions).
__version__ = "1.1.0"
CONTRACT = "recsys.v1"

_EXPORTS = {
    "channels": ("NO_RETRY", "RetryPolicy"),
    "errors": ("CancelledError", "DeadlineExceededError", "FailedPreconditionError",
               "InvalidArgumentError", "NotFoundError", "PermissionDeniedError", "RecsysError",
               "ResourceExhaustedError", "ServerError", "UnauthenticatedError",
               "UnavailableError", "UnimplementedError"),
    "recsys_client": ("DEFAULT_EMBEDDER", "DEFAULT_INDEX", "RecsysClient"),
    "types": ("FUSIONS", "MODES", "DeleteResult", "EmbedResult", "EmbedTiming", "Embedding", "Hit",
              "HybridParams", "ModelInfo", "Product", "ProductPage", "SearchParams",
              "SearchResult", "SearchTiming", "Stats", "UpsertResult"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

# Spelled out (not derived from _EXPORTS) so that type checkers read it; tests/test_client_types.py
# keeps it, _EXPORTS and the TYPE_CHECKING imports the same.
__all__ = ["CancelledError", "DEFAULT_EMBEDDER", "DEFAULT_INDEX", "DeadlineExceededError",
           "DeleteResult", "EmbedResult", "EmbedTiming", "Embedding", "FUSIONS",
           "FailedPreconditionError", "Hit", "HybridParams", "InvalidArgumentError", "MODES",
           "ModelInfo", "NO_RETRY", "NotFoundError", "PermissionDeniedError", "Product",
           "ProductPage", "RecsysClient", "RecsysError", "ResourceExhaustedError", "RetryPolicy",
           "SearchParams", "SearchResult", "SearchTiming", "ServerError", "Stats",
           "UnauthenticatedError", "UnavailableError", "UnimplementedError", "UpsertResult"]

if TYPE_CHECKING:  # type checkers (py.typed) see the names; at run time they load on first use
    from .channels import NO_RETRY, RetryPolicy
    from .errors import (CancelledError, DeadlineExceededError, FailedPreconditionError,
                         InvalidArgumentError, NotFoundError, PermissionDeniedError, RecsysError,
                         ResourceExhaustedError, ServerError, UnauthenticatedError,
                         UnavailableError, UnimplementedError)
    from .recsys_client import DEFAULT_EMBEDDER, DEFAULT_INDEX, RecsysClient
    from .types import (FUSIONS, MODES, DeleteResult, EmbedResult, EmbedTiming, Embedding, Hit,
                        HybridParams, ModelInfo, Product, ProductPage, SearchParams, SearchResult,
                        SearchTiming, Stats, UpsertResult)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
