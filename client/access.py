"""What a caller presents: TLS settings (PEM files in, gRPC credentials out) and a bearer token.

Client side, and free of server plumbing: the `recsys` CLI and RecsysClient use it, and so do the
servers where they are clients (the index service calling the embedder) or check the same files
(servekit.tls reuses the PEM checks for its own certificate).

- `ClientTls.from_flags(ca, cert, key)`: `--tls-ca PEM` (env RECSYS_TLS_CA) trusts that CA
  (without it, the system's roots); `--tls-client-cert/--tls-client-key` present a client
  certificate for mutual TLS. `.credentials()` reads and checks every file with the standard
  library's `ssl` (the chain parses, the key belongs to the certificate, not encrypted), so an
  unusable file gets a one-line error naming it, where gRPC would only fail the handshake.
- `load_token(token_file)`: a token from `--token-file PATH`, else RECSYS_TOKEN_FILE /
  RECSYS_TOKEN; `bearer_metadata(token)` is the `authorization: Bearer <token>` call metadata.
- Token files, for clients and servers alike: one token per line; blank lines and lines starting
  with `#` are ignored (`parse_tokens`). A client sends one token, so its file holds exactly one;
  a server's may hold several (servekit.tokens: rotation without downtime).
"""
from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

CA_ENV, CLIENT_CERT_ENV, CLIENT_KEY_ENV = ("RECSYS_TLS_CA", "RECSYS_TLS_CLIENT_CERT",
                                          "RECSYS_TLS_CLIENT_KEY")
METADATA_KEY = "authorization"
SCHEME = "Bearer"
TOKEN_ENV = "RECSYS_TOKEN"
TOKEN_FILE_ENV = "RECSYS_TOKEN_FILE"


class TlsError(ValueError):
    """A TLS setting cannot be used; the message names the file and the flag."""


class TokenError(ValueError):
    """The configured token cannot be used (unreadable file, empty, not printable ASCII)."""


# -- PEM files --------------------------------------------------------------------------------

def read_pem(path: str | os.PathLike, what: str, marker: str) -> bytes:
    """The bytes of a PEM file; TlsError naming `what` and the file when unreadable or not PEM."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
    if b"-----BEGIN " not in data or marker.encode() not in data:
        raise TlsError(f"the {what} {path} is not a PEM file with a {marker} block")
    return data


def _no_password(key: Path, what: str):
    def refuse(*_args):
        raise TlsError(f"the key {key} ({what}) is encrypted, which is not supported: give the "
                       "key without a passphrase (e.g. openssl pkey -in KEY -out PLAIN_KEY) and "
                       "protect the file instead")
    return refuse


def check_pair(cert: Path, key: Path, what: str = "--tls-cert/--tls-key") -> None:
    """TlsError unless the certificate chain parses and the key belongs to its first certificate
    (gRPC itself would only say "Failed to bind")."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key,
                                                               password=_no_password(key, what))
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


def pick_path(flag_value, env: Mapping[str, str], name: str) -> Path | None:
    """A flag's path, else the environment variable `name`, else None."""
    value = flag_value if flag_value not in (None, "") else env.get(name) or None
    return Path(value) if value else None


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
        ca, cert = pick_path(ca, env, CA_ENV), pick_path(cert, env, CLIENT_CERT_ENV)
        key = pick_path(key, env, CLIENT_KEY_ENV)
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


# -- bearer tokens ----------------------------------------------------------------------------

def check_token(token: str, source: str = "the token") -> str:
    """The token, stripped of surrounding whitespace; a clear error when it cannot be one."""
    token = token.strip()
    if not token:
        raise TokenError(f"{source} is empty")
    if not all(33 <= ord(c) <= 126 for c in token):
        raise TokenError(f"{source} must be printable ASCII without spaces (it travels in a "
                         "gRPC metadata value)")
    return token


def parse_tokens(text: str, source: str) -> list[str]:
    """The tokens of a token file's text, in order, repeats dropped: one per line, blank lines
    and `#` comments ignored. TokenError (naming `source` and the line, never the token) for a
    line that cannot be a token, or when no token is left."""
    tokens: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            token = check_token(line, f"{source} (line {number})")
            if token not in tokens:
                tokens.append(token)
    if not tokens:
        raise TokenError(f"{source} is empty (no token line; '#' lines are comments)")
    return tokens


def read_token_file(path: str | os.PathLike) -> list[str]:
    """The tokens of the file at `path` (parse_tokens); TokenError when unreadable."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise TokenError(f"cannot read the token file {path}: {reason}") from None
    return parse_tokens(text, f"the token file {path}")


def load_token(token_file: str | os.PathLike | None = None,
               env: Mapping[str, str] | None = None) -> str | None:
    """The token from `token_file` (a flag) or else RECSYS_TOKEN_FILE / RECSYS_TOKEN in `env`;
    None when none is configured. A file must hold exactly one token: a caller sends one."""
    env = os.environ if env is None else env
    token_file = token_file or env.get(TOKEN_FILE_ENV) or None
    if token_file:
        tokens = read_token_file(token_file)
        if len(tokens) > 1:
            raise TokenError(f"the token file {token_file} holds {len(tokens)} tokens, and a "
                             "caller sends one: give it a file with just the token it should send")
        return tokens[0]
    if env.get(TOKEN_ENV):
        return check_token(env[TOKEN_ENV], f"${TOKEN_ENV}")
    return None


def bearer_metadata(token: str) -> tuple[tuple[str, str]]:
    """One call's metadata: `stub.Search(request, timeout=5, metadata=bearer_metadata(token))`."""
    return ((METADATA_KEY, f"{SCHEME} {check_token(token)}"),)
