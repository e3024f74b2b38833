"""Who may call a server: optional TLS (servekit.tls) and an optional shared token (servekit.auth),
resolved once at start from a service's config into what build_server and bind take.

    access = server_access(config.tls_cert, config.tls_key, config.tls_client_ca, config.token_file)
    server = build_server(..., extra_interceptors=access.interceptors)
    port = bind(server, config.address, access.credentials)

Every file is read and checked here, before binding: an unusable one raises AccessError with a
one-line message naming the file (the service prints it and exits non-zero, no traceback).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import grpc

from client.access import ClientTls, TlsError, TokenError, load_token

from .auth import TokenAuthInterceptor
from .tls import ServerTls


class AccessError(ValueError):
    """A TLS or token setting cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class ServerAccess:
    credentials: grpc.ServerCredentials | None  # None: plaintext
    interceptors: tuple  # the token check, or nothing
    tls: ServerTls | None
    token: str | None

    def describe(self) -> str:
        """e.g. 'TLS (client certificates required), token required' for the start-up log."""
        if self.tls is None:
            transport = "plaintext"
        else:
            transport = "TLS" + (" (client certificates required)" if self.tls.client_ca else "")
        return f"{transport}, {'token required' if self.token else 'no token'}"


def server_access(tls_cert: str = "", tls_key: str = "", tls_client_ca: str = "",
                  token_file: str = "", env: Mapping[str, str] | None = None) -> ServerAccess:
    """From a server's flags (empty: the RECSYS_TLS_* / RECSYS_TOKEN* environment, else off)."""
    try:
        tls = ServerTls.from_flags(tls_cert, tls_key, tls_client_ca, env=env)
        credentials = tls.credentials() if tls else None
        token = load_token(token_file, env=env)
    except (TlsError, TokenError) as exc:
        raise AccessError(str(exc)) from None
    interceptors = (TokenAuthInterceptor(token),) if token else ()
    return ServerAccess(credentials, interceptors, tls, token)


def client_credentials(ca: str = "", cert: str = "", key: str = "", *,
                       flags: str = "") -> grpc.ChannelCredentials | None:
    """TLS credentials for a service-to-service channel from explicit flags only (no environment
    fallback: RECSYS_TLS_CA is the command-line client's); None: plaintext. `flags` (e.g.
    "--embedder-tls-*") starts an error's message, to name the service's own flags."""
    try:
        tls = ClientTls.from_flags(ca, cert, key, env={})
        return tls.credentials() if tls else None
    except TlsError as exc:
        raise AccessError(f"{flags}: {exc}" if flags else str(exc)) from None


def client_token(token_file: str, default: str | None) -> str | None:
    """The token of `token_file` (a flag), else `default` (the service's own token)."""
    if not token_file:
        return default
    try:
        return load_token(token_file, env={})
    except TokenError as exc:
        raise AccessError(str(exc)) from None
