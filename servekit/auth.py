"""An optional shared token, checked on every call: `authorization: Bearer <token>` metadata.

Server: `TokenAuthInterceptor(token)` goes first in the server's interceptors. A call without the
header, or with another token, gets UNAUTHENTICATED with a message saying how to pass it (the
token itself is never echoed). Compared with `hmac.compare_digest` (constant time).

Open without a token:
- health (`/grpc.health.v1.Health/*`): load balancers, orchestrators and our own tests probe it
  and carry no secrets; it says only SERVING or not.
- server reflection (`/grpc.reflection.*`): it describes the API, which is public anyway (the
  protos are in the repository), and returns no data; keeping it open lets grpcurl-style tools
  list and describe the services before a token is configured, and see UNAUTHENTICATED with the
  how-to message on the first real call. Pass `open_prefixes=HEALTH_ONLY` to close it too.

Client: `with_token(channel, token)` adds the header to every call of a channel (plaintext or
TLS); `bearer_metadata(token)` is the same header for one call's `metadata=`;
`token_call_credentials(token)` is the gRPC-native form for TLS channels.

The token comes from `--token-file PATH` or the `RECSYS_TOKEN` environment variable, read once at
start by the service's config (`load_token`). No token configured: no check.
"""
from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from pathlib import Path

import grpc

from .metrics import REQUESTS

METADATA_KEY = "authorization"
SCHEME = "Bearer"
TOKEN_ENV = "RECSYS_TOKEN"
TOKEN_FILE_ENV = "RECSYS_TOKEN_FILE"
HEALTH_ONLY = ("/grpc.health.v1.Health/",)
HEALTH_AND_REFLECTION = (*HEALTH_ONLY, "/grpc.reflection.v1alpha.ServerReflection/",
                         "/grpc.reflection.v1.ServerReflection/")
HOW_TO = (f"pass the service's shared token as call metadata '{METADATA_KEY}: {SCHEME} <token>' "
          f"(python -m client: --token-file PATH or {TOKEN_ENV}; grpcurl: "
          f"-H '{METADATA_KEY}: {SCHEME} <token>')")


class TokenError(ValueError):
    """The configured token cannot be used (unreadable file, empty, not printable ASCII)."""


def check_token(token: str, source: str = "the token") -> str:
    """The token, stripped of surrounding whitespace; a clear error when it cannot be one."""
    token = token.strip()
    if not token:
        raise TokenError(f"{source} is empty")
    if not all(33 <= ord(c) <= 126 for c in token):
        raise TokenError(f"{source} must be printable ASCII without spaces (it travels in a "
                         "gRPC metadata value)")
    return token


def load_token(token_file: str | os.PathLike | None = None,
               env: Mapping[str, str] | None = None) -> str | None:
    """The shared token from `token_file` (a flag) or else RECSYS_TOKEN_FILE / RECSYS_TOKEN in
    `env`; None when none is configured (no check)."""
    env = os.environ if env is None else env
    token_file = token_file or env.get(TOKEN_FILE_ENV) or None
    if token_file:
        try:
            text = Path(token_file).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenError(f"cannot read the token file {token_file}: {exc}") from exc
        return check_token(text, f"the token file {token_file}")
    if env.get(TOKEN_ENV):
        return check_token(env[TOKEN_ENV], f"${TOKEN_ENV}")
    return None


def _presented_token(metadata) -> str | None:
    for key, value in metadata or ():
        if key == METADATA_KEY:
            scheme, _, token = (value if isinstance(value, str) else value.decode()).partition(" ")
            return token.strip() if scheme.lower() == SCHEME.lower() else ""
    return None


def _rejection(method: str, message: str, kind: grpc.RpcMethodHandler | None):
    def reject(_request_or_iterator, context):
        REQUESTS.labels(method, grpc.StatusCode.UNAUTHENTICATED.name).inc()
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    if kind is None or kind.unary_unary:
        return grpc.unary_unary_rpc_method_handler(reject)
    if kind.unary_stream:
        return grpc.unary_stream_rpc_method_handler(reject)
    if kind.stream_unary:
        return grpc.stream_unary_rpc_method_handler(reject)
    return grpc.stream_stream_rpc_method_handler(reject)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """UNAUTHENTICATED for every call without `authorization: Bearer <token>`, except the
    `open_prefixes` (health and reflection by default). Put it first in the interceptor list."""

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
        return _rejection(method, message, continuation(handler_call_details))


# -- client side -------------------------------------------------------------------------------

def bearer_metadata(token: str) -> tuple[tuple[str, str]]:
    """One call's metadata: `stub.Search(request, timeout=5, metadata=bearer_metadata(token))`."""
    return ((METADATA_KEY, f"{SCHEME} {check_token(token)}"),)


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


class _TokenPlugin(grpc.AuthMetadataPlugin):
    def __init__(self, token: str):
        self._metadata = bearer_metadata(token)

    def __call__(self, _context, callback):
        callback(self._metadata, None)


def token_call_credentials(token: str) -> grpc.CallCredentials:
    """The token as gRPC call credentials, for TLS channels only (gRPC refuses to send call
    credentials in plaintext): `grpc.composite_channel_credentials(tls, token_call_credentials(t))`."""
    return grpc.metadata_call_credentials(_TokenPlugin(token), name="recsys-bearer-token")
