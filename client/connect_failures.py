"""What grpc-core's text says when no connection could be made, for a message a person can act on.

grpc-core reports a refused TLS set-up as "Socket closed" or "Tls handshake failed ...", inside
"failed to connect to all addresses; last error: ...", so "is it running?" alone would send an
operator to the wrong place. Standard library only: both the client and the index service (for
its calls to the embedder) read connection failures with it and with client.address_probe, and
the servers load nothing else of the friendly client.
"""
from __future__ import annotations

# Text of grpc-core errors raised on the client side when no connection could be made.
CONNECT_FAILURES = ("failed to connect", "connection refused", "dns resolution failed",
                    "name resolution", "errors resolving", "lookup failed", "connect failed",
                    "socket closed", "handshake")


def is_connect_failure(details: str) -> bool:
    lowered = details.lower()
    return any(marker in lowered for marker in CONNECT_FAILURES)


def last_error(details: str) -> str:
    """grpc-core's connect errors are long; the part after the last 'last error:', at most 200
    characters."""
    tail = details.rsplit("last error:", 1)[-1].strip()
    return tail if len(tail) < 200 else tail[:197] + "..."


# grpc-core's words for each way a TLS set-up fails, in the order they are looked for.
_TLS_FAILURES = (("wrong_version_number", "plaintext server"),
                 ("certificate_verify_failed", "unknown CA"),
                 ("hostname verification", "name not in certificate"),
                 ("socket closed", "closed during set-up"),
                 ("handshake", "handshake"))


def tls_failure(details: str) -> str | None:
    """Which way a TLS set-up failed, by grpc-core's text (a key of tls_hint's table), or None."""
    lowered = details.lower()
    return next((kind for marker, kind in _TLS_FAILURES if marker in lowered), None)


def tls_hint(details: str, *, ca_flag: str, client_cert_flags: str) -> str | None:
    """What a TLS failure in `details` most likely means, naming the caller's own flags
    (`ca_flag`, e.g. "--tls-ca"; `client_cert_flags`, e.g. "--tls-client-cert/--tls-client-key");
    None when the text shows no TLS failure (a refused connection, a name not resolved...)."""
    return {
        "plaintext server": f"the server does not speak TLS: call it without TLS (no {ca_flag}), "
                            "or turn TLS on at the server",
        "unknown CA": f"the server's certificate is not signed by the CA in {ca_flag}",
        "name not in certificate": "the server's certificate does not hold the name it was "
                                   "dialled by: dial it by a name in its certificate",
        "closed during set-up": "the server closed the connection while it was being set up: it "
                                f"may serve TLS only ({ca_flag}), or require a client "
                                f"certificate signed by its CA ({client_cert_flags})",
        "handshake": f"the TLS handshake failed: check {ca_flag} and {client_cert_flags}",
    }.get(tls_failure(details))
