"""Why the index service cannot reach the embedder, in terms of its own --embedder* flags.

A refused IPv6 address can hide the TLS failure on the IPv4 one in grpc-core's "last error";
client.address_probe finds it, both for a wait at start-up and for a failed call.
"""
from __future__ import annotations

import grpc

from client.address_probe import health_check, with_hidden_tls_failure
from client.connect_failures import is_connect_failure, last_error, tls_hint


def no_connection(detail: str, target: str, credentials=None, timeout: float = 1.0) -> str:
    """grpc-core's connect error and what it likely means, naming our flags. When the error shows
    no TLS failure, `target`'s addresses are probed (`timeout` each) for one that does."""
    detail = with_hidden_tls_failure(detail, target, credentials, timeout)
    hint = tls_hint(detail, ca_flag="--embedder-tls-ca",
                    client_cert_flags="--embedder-tls-client-cert/--embedder-tls-client-key")
    return (f"no connection ({last_error(detail)}): "
            f"{hint or 'is it running, at that address (--embedder)?'}")


def why_not_serving(channel: grpc.Channel, target: str, credentials=None,
                    timeout: float = 2.0) -> str:
    """Why a wait for the embedder at `target` timed out: the connection error and what it likely
    means, or that it answers but is not SERVING yet."""
    status, error = health_check(channel, timeout)
    if error is None:
        return f"it answers, but its health is {status} (still loading its model?)"
    detail = error.details() or error.code().name
    if error.code() != grpc.StatusCode.UNAVAILABLE or not is_connect_failure(detail):
        return f"its health check failed ({error.code().name}: {detail})"
    return no_connection(detail, target, credentials, timeout)
