"""TLS for our servers: `--tls-cert PEM --tls-key PEM` (env RECSYS_TLS_CERT / RECSYS_TLS_KEY) serve
TLS only; `--tls-client-ca PEM` (RECSYS_TLS_CLIENT_CA) also requires a client certificate signed
by that CA (mutual TLS). The client side (what a caller trusts and presents) is client/access.py,
whose PEM checks this module reuses.

Every file is read once at start and checked with the standard library's `ssl` (the chain
parses, the key belongs to the certificate, not encrypted): an unusable file stops the service
with a message naming the file and the flag it came from, where gRPC would only say "Failed to
bind". A certificate must name the host clients dial (a SAN such as `localhost` or `127.0.0.1`),
or clients fail the handshake.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from client.access import TlsError, check_ca, check_pair, pick_path, read_pem

CERT_ENV, KEY_ENV, CLIENT_CA_ENV = "RECSYS_TLS_CERT", "RECSYS_TLS_KEY", "RECSYS_TLS_CLIENT_CA"

__all__ = ["ServerTls", "TlsError", "CERT_ENV", "KEY_ENV", "CLIENT_CA_ENV"]


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate chain and key; with `client_ca`, clients must present a
    certificate signed by it (mutual TLS)."""
    cert: Path
    key: Path
    client_ca: Path | None = None

    @classmethod
    def from_flags(cls, cert=None, key=None, client_ca=None,
                   env: Mapping[str, str] | None = None) -> "ServerTls | None":
        """From --tls-cert/--tls-key/--tls-client-ca values, else the env; None: plaintext."""
        env = os.environ if env is None else env
        cert, key = pick_path(cert, env, CERT_ENV), pick_path(key, env, KEY_ENV)
        client_ca = pick_path(client_ca, env, CLIENT_CA_ENV)
        if cert is None and key is None:
            if client_ca is not None:
                raise TlsError("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS)")
            return None
        if cert is None or key is None:
            raise TlsError("TLS needs both --tls-cert and --tls-key "
                           f"(or {CERT_ENV} and {KEY_ENV}); only one is set")
        return cls(cert, key, client_ca)

    def credentials(self) -> grpc.ServerCredentials:
        chain = read_pem(self.cert, "TLS certificate (--tls-cert)", "CERTIFICATE")
        key = read_pem(self.key, "TLS private key (--tls-key)", "PRIVATE KEY")
        check_pair(self.cert, self.key)
        client_ca = None
        if self.client_ca:
            client_ca = read_pem(self.client_ca, "client CA (--tls-client-ca)", "CERTIFICATE")
            check_ca(self.client_ca, "client CA (--tls-client-ca)")
        return grpc.ssl_server_credentials([(key, chain)], root_certificates=client_ca,
                                           require_client_auth=client_ca is not None)
