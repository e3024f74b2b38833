"""Who may call what: `authorization: Bearer <token>` metadata, checked on every call by role.

Server: `TokenAuthInterceptor(credentials, read_methods=...)` sits inside the ServiceInterceptor
(servekit.lifecycle orders them). `credentials` (servekit.tokens) say which role each token
grants: FULL (every call) or READ (only the methods in `read_methods`). Deny by default: a
method that is not listed as a read (the writes, and any RPC added later) needs a FULL token.
Refusals are answered through the error table (servekit.errors) and counted in
`grpc_server_rejected_calls_total{method, reason}`:

| what the call carries                               | status            | reason        |
|-----------------------------------------------------|-------------------|---------------|
| no `authorization` metadata                         | UNAUTHENTICATED   | missing       |
| not exactly one `Bearer <printable ASCII token>`    | UNAUTHENTICATED   | malformed     |
| a token the service does not hold (or no longer)    | UNAUTHENTICATED   | unknown_token |
| a read-only token on a method that needs FULL       | PERMISSION_DENIED | read_only     |

Several `authorization` values are refused even when one of them is good: a proxy that adds
its own header must not make a bad one pass, nor the order of the headers decide. Each message
names the method and the credential it needs, and says how to pass it; no message or log line
holds a token. The comparison is constant time (servekit.tokens.Credentials.role_of).

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
"""
from __future__ import annotations

import grpc

from client.access import METADATA_KEY, SCHEME, TOKEN_ENV, bearer_metadata

from .errors import PermissionDenied, ServiceError, Unauthenticated
from .interceptors import handler_factory
from .metrics import REJECTED
from .tokens import Credentials, Role

HEALTH_AND_REFLECTION = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                         "/grpc.reflection.v1.ServerReflection/")
HOW_TO = (f"pass it as call metadata '{METADATA_KEY}: {SCHEME} <token>' (python -m client: "
          f"--token-file PATH or {TOKEN_ENV}; grpcurl: -H '{METADATA_KEY}: {SCHEME} <token>')")


def presented_token(metadata) -> tuple[str | None, str | None]:
    """(token, None) for exactly one `authorization: Bearer <token>` (the scheme in any case,
    spaces and tabs around the token ignored, the token printable ASCII), else (None, reason)
    with reason "missing" or "malformed"."""
    values = [value for key, value in metadata or () if key == METADATA_KEY]
    if not values:
        return None, "missing"
    if len(values) > 1:
        return None, "malformed"
    value = values[0]
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None, "malformed"
    scheme, _, token = value.strip(" \t").partition(" ")
    token = token.strip(" \t")
    if scheme.lower() != SCHEME.lower() or not token or \
            not all(33 <= ord(c) <= 126 for c in token):
        return None, "malformed"
    return token, None


def _rejection(error: ServiceError, kind: grpc.RpcMethodHandler | None):
    """A handler of the same kind as the method's that raises `error`: the ServiceInterceptor
    around it answers it from the error table and counts it."""
    def reject(_request_or_iterator, _context):
        raise error

    return handler_factory(kind)(reject)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Every call but the `open_prefixes` (health and reflection by default) needs a token:
    a READ or FULL one for `read_methods` (full method names, "/package.Service/Method"), a
    FULL one for anything else. `credentials`: a Credentials, or one token (FULL)."""

    def __init__(self, credentials: Credentials | str, *, read_methods=(),
                 open_prefixes: tuple[str, ...] = HEALTH_AND_REFLECTION):
        if isinstance(credentials, str):
            credentials = Credentials(fixed=credentials)
        self._credentials = credentials
        self._read = frozenset(read_methods)
        self._open = tuple(open_prefixes)

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method.startswith(self._open):
            return continuation(handler_call_details)
        needed = Role.READ if method in self._read else Role.FULL
        token, reason = presented_token(handler_call_details.invocation_metadata)
        if token is not None:
            role = self._credentials.role_of(token)
            if role is not None and role >= needed:
                return continuation(handler_call_details)
            reason = "unknown_token" if role is None else "read_only"
        handler = continuation(handler_call_details)
        label = method if handler is not None else "unknown"
        REJECTED.labels(label, reason).inc()
        error_class = PermissionDenied if reason == "read_only" else Unauthenticated
        error = error_class(f"{method}: {self._message(reason, needed)}",
                            count_as=None if handler is not None else "unknown")
        return _rejection(error, handler)

    def _message(self, reason: str, needed: Role) -> str:
        roles = self._credentials.has_read_role
        if needed == Role.READ and roles:
            needs = ("this call needs the service's read-only token (server: --read-token-file) "
                     "or its full-access token (--token-file)")
        elif roles:
            needs = "this call needs the service's full-access (write) token (server: --token-file)"
        else:
            needs = "this call needs the service's token (server: --token-file)"
        if reason == "read_only":
            return f"the token given is read-only; {needs}"
        what = {"missing": f"no '{METADATA_KEY}' metadata",
                "malformed": f"'{METADATA_KEY}' metadata is not '{SCHEME} <token>' "
                             "(exactly one value; the token printable ASCII)",
                "unknown_token": "wrong token (not one this service holds; a token removed "
                                 "by a rotation is refused too)"}[reason]
        return f"{what}; {needs}: {HOW_TO}"


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
