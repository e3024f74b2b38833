"""Who may call a server: optional TLS (servekit.tls) and optional tokens by role
(servekit.tokens, checked by servekit.auth), resolved once at start from a service's config into
what build_server and bind take.

    access = server_access(config.tls_cert, config.tls_key, config.tls_client_ca, config.token_file,
                           read_token_file=config.read_token_file, read_methods=READ_METHODS)
    server = build_server(..., extra_interceptors=access.interceptors)
    port = bind(server, config.address, access.credentials)
    access.watch(config.token_reload_s)      # + start_server(on_reload=access.reload): SIGHUP

Every file is read and checked here, before binding: an unusable one raises AccessError with a
one-line message naming the file and the flag (or environment variable) it came from (the
service prints it and exits non-zero, no traceback).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import grpc

from client.access import TOKEN_ENV, TOKEN_FILE_ENV, ClientTls, TlsError, TokenError

from .auth import TokenAuthInterceptor
from .tls import ServerTls
from .tokens import Credentials, read_tokens


class AccessError(ValueError):
    """A TLS or token setting cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class ServerAccess:
    credentials: grpc.ServerCredentials | None  # None: plaintext
    interceptors: tuple  # the token check, or nothing
    tls: ServerTls | None
    tokens: Credentials | None  # None: no token check

    @property
    def token(self) -> str | None:
        """The full-access token the service sends where it is a client (the first line of its
        token file at start), or None."""
        return self.tokens.first_full_token if self.tokens else None

    def describe(self) -> str:
        """e.g. 'TLS (client certificates required), 1 full-access, 1 read-only token(s)
        required' for the start-up log (counts only, never a token)."""
        if self.tls is None:
            transport = "plaintext"
        else:
            transport = "TLS" + (" (client certificates required)" if self.tls.client_ca else "")
        return f"{transport}, {self.tokens.counts() + ' required' if self.tokens else 'no token'}"

    def reload(self, reason: str = "SIGHUP") -> bool:
        """Read the token files again (servekit.tokens.Credentials.reload); False when none."""
        return self.tokens.reload(reason) if self.tokens else False

    def watch(self, interval_s: float) -> threading.Event | None:
        """Reload the token files when they change, checked every `interval_s` (0: SIGHUP only)."""
        return self.tokens.watch(interval_s) if self.tokens else None


def server_access(tls_cert: str = "", tls_key: str = "", tls_client_ca: str = "",
                  token_file: str = "", env: Mapping[str, str] | None = None, *,
                  read_token_file: str = "", read_methods=()) -> ServerAccess:
    """From a server's flags (TLS: empty means the RECSYS_TLS_* environment, else off; tokens:
    the flags only). `read_token_file`: tokens that may call only `read_methods`; it needs a
    full-access token. RECSYS_TOKEN_FILE / RECSYS_TOKEN are the command-line client's token,
    often a read-only one: a server that found one of them and no --token-file used to take it as
    its full-access token, making every read token a write token; it now refuses to start."""
    env = os.environ if env is None else env
    try:
        tls = ServerTls.from_flags(tls_cert, tls_key, tls_client_ca, env=env)
        credentials = tls.credentials() if tls else None
        if not token_file:
            _refuse_client_token(env)
        tokens = _tokens(token_file, read_token_file)
    except (TlsError, TokenError) as exc:
        raise AccessError(str(exc)) from None
    interceptors = ((TokenAuthInterceptor(tokens, read_methods=read_methods),) if tokens
                    else ())
    return ServerAccess(credentials, interceptors, tls, tokens)


def _refuse_client_token(env: Mapping[str, str]) -> None:
    for name in (TOKEN_FILE_ENV, TOKEN_ENV):
        if env.get(name):
            raise TokenError(
                f"{name} is set where this server starts: it is the command-line client's token "
                "(perhaps a read-only one), which a server does not take. Give the server its "
                "own with --token-file (INDEX_TOKEN_FILE, EMBEDDER_TOKEN_FILE), or unset "
                f"{name} for the server's process")


def _tokens(full_file: str, read_file: str) -> Credentials | None:
    if not full_file:
        if read_file:
            raise TokenError(f"--read-token-file {read_file} needs a full-access token too "
                             "(--token-file), the one that every call but the reads needs")
        return None
    return Credentials(full_file=full_file, read_file=read_file, full_flag="--token-file")


def client_credentials(ca: str = "", cert: str = "", key: str = "", *,
                       flag_prefix: str = "--") -> grpc.ChannelCredentials | None:
    """TLS credentials for a service-to-service channel from explicit flags only (no environment
    fallback: RECSYS_TLS_CA is the command-line client's); None: plaintext. `flag_prefix` (e.g.
    "--embedder-") names the service's own flags in an error: `--embedder-tls-ca`, not the
    client's `--tls-ca`."""
    try:
        tls = ClientTls.from_flags(ca, cert, key, env={})
        return tls.credentials() if tls else None
    except TlsError as exc:
        raise AccessError(str(exc).replace("--tls-", f"{flag_prefix}tls-")) from None


def client_token(token_file: str, default: str | None,
                 flag: str = "--embedder-token-file") -> str | None:
    """The token of `token_file` (the flag `flag`), else `default` (the service's own token).
    The file must hold exactly one token: a caller sends one."""
    if not token_file:
        return default
    source = f"the token file ({flag}) {token_file}"
    try:
        tokens = read_tokens(token_file, source)
    except TokenError as exc:
        raise AccessError(str(exc)) from None
    if len(tokens) > 1:
        raise AccessError(f"{source} holds {len(tokens)} tokens, and a caller sends one: give "
                          "it a file with just the token it should send")
    return tokens[0]
