"""An optional shared token, checked on every call: `authorization: Bearer <token>` metadata.

Server: `TokenAuthInterceptor(token)` sits inside the ServiceInterceptor (servekit.lifecycle
orders them). A call without the header, or with another token, is answered through the error
table (servekit.errors: Unauthenticated -> UNAUTHENTICATED) with a message saying how to pass the
token (the token itself is never echoed). Compared with `hmac.compare_digest` (constant time).

Open without a token:
- health (`/grpc.health.v1.Health/*`): load balancers, orchestrators and our own tests probe it
  and carry no secrets; it says only SERVING or not.
- server reflection (`/grpc.reflection.*`): it describes the API, which is public anyway (the
  protos are in the repository), and returns no data; keeping it open lets grpcurl-style tools
  list and describe the services before a token is configured, and see UNAUTHENTICATED with the
  how-to message on the first real call. `open_prefixes` narrows this (e.g. health only).

Client side: `with_token(channel, token)` adds the header to every call of a channel (plaintext
or TLS), for the index service's channel to the embedder. Reading and checking a token
(`load_token`, `check_token`) and one call's metadata (`bearer_metadata`) live in client/access.py.

The token comes from `--token-file PATH` or the `RECSYS_TOKEN` environment variable, read once at
start by the service's config (`load_token`). No token configured: no check.
"""
from __future__ import annotations

import hmac

import grpc

from client.access import METADATA_KEY, SCHEME, TOKEN_ENV, bearer_metadata, check_token

from .errors import Unauthenticated

HEALTH_AND_REFLECTION = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                         "/grpc.reflection.v1.ServerReflection/")
HOW_TO = (f"pass the service's shared token as call metadata '{METADATA_KEY}: {SCHEME} <token>' "
          f"(python -m client: --token-file PATH or {TOKEN_ENV}; grpcurl: "
          f"-H '{METADATA_KEY}: {SCHEME} <token>')")


def _presented_token(metadata) -> str | None:
    for key, value in metadata or ():
        if key == METADATA_KEY:
            scheme, _, token = (value if isinstance(value, str) else value.decode()).partition(" ")
            return token.strip() if scheme.lower() == SCHEME.lower() else ""
    return None


def _rejection(message: str, kind: grpc.RpcMethodHandler | None):
    """A handler of the same kind as the method's that raises Unauthenticated: the
    ServiceInterceptor around it answers it from the error table and counts it."""
    def reject(_request_or_iterator, _context):
        raise Unauthenticated(message)

    if kind is None or kind.unary_unary:
        return grpc.unary_unary_rpc_method_handler(reject)
    if kind.unary_stream:
        return grpc.unary_stream_rpc_method_handler(reject)
    if kind.stream_unary:
        return grpc.stream_unary_rpc_method_handler(reject)
    return grpc.stream_stream_rpc_method_handler(reject)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """UNAUTHENTICATED for every call without `authorization: Bearer <token>`, except the
    `open_prefixes` (health and reflection by default)."""

    def __init__(self, token: str, open_prefixes: tuple[str, ...] = HEALTH_AND_REFLECTION):
        self._token = check_token(token).encode()
        self._open = tuple(open_prefixes)

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method.startswith(self._open):
            return continuation(handler_call_details)
        presented = _presented_token(handler_call_details.invocation_metadata)
        if presented and hmac.compare_digest(presented.encode(), self._token):
            return continuation(handler_call_details)
        if presented is None:
            message = f"{method}: no '{METADATA_KEY}' metadata: {HOW_TO}"
        elif not presented:
            message = f"{method}: '{METADATA_KEY}' metadata is not '{SCHEME} <token>': {HOW_TO}"
        else:
            message = f"{method}: wrong token: {HOW_TO}"
        return _rejection(message, continuation(handler_call_details))


# -- client side: the index service's channel to the embedder --------------------------------

class _TokenClientInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                              grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    def __init__(self, token: str):
        self._metadata = bearer_metadata(token)

    def _details(self, details):
        metadata = [m for m in (details.metadata or ()) if m[0] != METADATA_KEY]
        return _CallDetails(details.method, details.timeout, [*metadata, *self._metadata],
                            details.credentials, getattr(details, "wait_for_ready", None),
                            getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression):
        self.method, self.timeout, self.metadata = method, timeout, metadata
        self.credentials, self.wait_for_ready, self.compression = (credentials, wait_for_ready,
                                                                   compression)


def with_token(channel: grpc.Channel, token: str | None) -> grpc.Channel:
    """`channel` with the bearer token on every call (the channel itself when token is None).
    Works on plaintext and TLS channels; close the channel you passed in, as before."""
    if token is None:
        return channel
    return grpc.intercept_channel(channel, _TokenClientInterceptor(token))
