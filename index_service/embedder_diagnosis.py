"""Why the index service cannot reach the embedder, in terms of its own --embedder* flags.

grpc-core reports a failed connection as "failed to connect to all addresses; last error: ...":
the error of the last address it tried. A host name with an IPv6 and an IPv4 address (localhost)
often ends on the IPv6 one, refused because the embedder listens on 127.0.0.1, and hides the TLS
failure on the other. So when the last error shows no TLS failure, a plain HOST:PORT target is
probed once per address, and a TLS failure on any of them wins: both for a wait at start-up and
for a failed call.
"""
from __future__ import annotations

import socket

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from client.connect_failures import is_connect_failure, last_error, tls_failure, tls_hint

from .config import host_and_port


def no_connection(detail: str, target: str, credentials=None, timeout: float = 1.0) -> str:
    """grpc-core's connect error and what it likely means, naming our flags. When the error shows
    no TLS failure, `target`'s addresses are probed (`timeout` each) for one that does."""
    if tls_failure(detail) is None:
        detail = _telling_address_error(target, credentials, timeout) or detail
    hint = tls_hint(detail, ca_flag="--embedder-tls-ca",
                    client_cert_flags="--embedder-tls-client-cert/--embedder-tls-client-key")
    return (f"no connection ({last_error(detail)}): "
            f"{hint or 'is it running, at that address (--embedder)?'}")


def _health(channel: grpc.Channel, timeout: float) -> tuple[str | None, grpc.RpcError | None]:
    """(health status name, None) or (None, the error) of one fail-fast health check."""
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=timeout, wait_for_ready=False)
    except grpc.RpcError as exc:
        return None, exc
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status), None


def _addresses(target: str) -> list[str]:
    """The "ip:port" addresses of a plain HOST:PORT target ([] for another kind of target). For
    "localhost" both loopbacks: gRPC's resolver gives both whatever /etc/hosts says."""
    split = None if "/" in target else host_and_port(target)
    if split is None:
        return []
    host, port = split
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OverflowError):
        infos = []
    found = ["127.0.0.1", "::1"] if host == "localhost" else []
    found += [address[0] for *_, address in infos if address[0] not in found]
    return [f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}" for ip in found]


def _telling_address_error(target: str, credentials, timeout: float) -> str | None:
    """The first per-address connect error of `target` that shows a TLS failure, or None. The
    certificate is still checked against the host name dialled."""
    host = (host_and_port(target) or ("", 0))[0]
    for address in _addresses(target):
        options = [("grpc.ssl_target_name_override", host)] if credentials else []
        channel = (grpc.secure_channel(address, credentials, options=options) if credentials
                   else grpc.insecure_channel(address))
        with channel:
            _, error = _health(channel, timeout)
        detail = (error.details() or "") if error is not None else ""
        if tls_failure(detail):
            return detail
    return None


def why_not_serving(channel: grpc.Channel, target: str, credentials=None,
                    timeout: float = 2.0) -> str:
    """Why a wait for the embedder at `target` timed out: the connection error and what it likely
    means, or that it answers but is not SERVING yet."""
    status, error = _health(channel, timeout)
    if error is None:
        return f"it answers, but its health is {status} (still loading its model?)"
    detail = error.details() or error.code().name
    if error.code() != grpc.StatusCode.UNAVAILABLE or not is_connect_failure(detail):
        return f"its health check failed ({error.code().name}: {detail})"
    return no_connection(detail, target, credentials, timeout)
