"""Optional TLS for our servers and their clients: PEM files in, gRPC credentials out.

Server: `--tls-cert PEM --tls-key PEM` (env RECSYS_TLS_CERT / RECSYS_TLS_KEY) serve TLS only;
`--tls-client-ca PEM` (RECSYS_TLS_CLIENT_CA) also requires a client certificate signed by that CA
(mutual TLS). Client: `--tls-ca PEM` (RECSYS_TLS_CA) trusts that CA (without it, the system's
roots), `--tls-client-cert/--tls-client-key` present a client certificate for mutual TLS.

Every file is read once at start and checked with the standard library's `ssl` (the chain
parses, the key belongs to the certificate, not encrypted): an unusable file stops the service
with a message naming the file and the flag it came from, where gRPC would only say "Failed to
bind". A certificate must name the host clients dial (a SAN
such as `localhost` or `127.0.0.1`), or clients fail the handshake.
"""
from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

CERT_ENV, KEY_ENV, CLIENT_CA_ENV = "RECSYS_TLS_CERT", "RECSYS_TLS_KEY", "RECSYS_TLS_CLIENT_CA"
CA_ENV, CLIENT_CERT_ENV, CLIENT_KEY_ENV = ("RECSYS_TLS_CA", "RECSYS_TLS_CLIENT_CERT",
                                          "RECSYS_TLS_CLIENT_KEY")


class TlsError(ValueError):
    """A TLS setting cannot be used; the message names the file and the flag."""


def read_pem(path: str | os.PathLike, what: str, marker: str) -> bytes:
    """The bytes of a PEM file; TlsError naming `what` and the file when unreadable or not PEM."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
    if b"-----BEGIN " not in data or marker.encode() not in data:
        raise TlsError(f"the {what} {path} is not a PEM file with a {marker} block")
    return data


def _no_password(*_args):
    raise TlsError("encrypted private keys are not supported: give the key without a passphrase "
                   "(e.g. openssl pkey -in KEY -out PLAIN_KEY) and protect the file instead")


def check_pair(cert: Path, key: Path, what: str = "--tls-cert/--tls-key") -> None:
    """TlsError unless the certificate chain parses and the key belongs to its first certificate
    (gRPC itself would only say "Failed to bind")."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=_no_password)
    except ssl.SSLError as exc:
        raise TlsError(f"the certificate {cert} and key {key} ({what}) cannot be used together: "
                       f"{exc.reason or exc}") from exc


def check_ca(ca: Path, what: str) -> None:
    """TlsError unless every certificate in the CA file parses."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=ca)
    except ssl.SSLError as exc:
        raise TlsError(f"the {what} {ca} holds a certificate that cannot be parsed: "
                       f"{exc.reason or exc}") from exc


def _pick(flag_value, env: Mapping[str, str], name: str) -> Path | None:
    value = flag_value if flag_value not in (None, "") else env.get(name) or None
    return Path(value) if value else None


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
        cert, key = _pick(cert, env, CERT_ENV), _pick(key, env, KEY_ENV)
        client_ca = _pick(client_ca, env, CLIENT_CA_ENV)
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


@dataclass(frozen=True)
class ClientTls:
    """What a client trusts (`ca`; None: the system's roots) and, for mutual TLS, the client
    certificate and key it presents."""
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    @classmethod
    def from_flags(cls, ca=None, cert=None, key=None, *, enabled: bool = False,
                   env: Mapping[str, str] | None = None) -> "ClientTls | None":
        """From --tls-ca/--tls-client-cert/--tls-client-key, else the env. None (plaintext) when
        none is set, unless `enabled` (e.g. a --tls flag: TLS with the system's roots)."""
        env = os.environ if env is None else env
        ca, cert = _pick(ca, env, CA_ENV), _pick(cert, env, CLIENT_CERT_ENV)
        key = _pick(key, env, CLIENT_KEY_ENV)
        if (cert is None) != (key is None):
            raise TlsError("a client certificate needs both --tls-client-cert and --tls-client-key")
        if ca is None and cert is None and not enabled:
            return None
        return cls(ca, cert, key)

    def credentials(self) -> grpc.ChannelCredentials:
        ca = cert = key = None
        if self.ca:
            ca = read_pem(self.ca, "CA certificate (--tls-ca)", "CERTIFICATE")
            check_ca(self.ca, "CA certificate (--tls-ca)")
        if self.cert:
            cert = read_pem(self.cert, "client certificate (--tls-client-cert)", "CERTIFICATE")
            key = read_pem(self.key, "client private key (--tls-client-key)", "PRIVATE KEY")
            check_pair(self.cert, self.key, "--tls-client-cert/--tls-client-key")
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                            certificate_chain=cert)


def open_channel(address: str, tls: ClientTls | None = None, options=()) -> grpc.Channel:
    """A TLS channel when `tls` is set, else plaintext. Add a token with auth.with_token()."""
    if tls is None:
        return grpc.insecure_channel(address, options=list(options))
    return grpc.secure_channel(address, tls.credentials(), options=list(options))
