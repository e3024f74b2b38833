"""The TLS failure that grpc-core's "last error" can hide, found by probing each address once.

grpc-core reports a failed connection as "failed to connect to all addresses; last error: ...":
the error of the last address it tried. A host name with an IPv6 and an IPv4 address (localhost)
often ends on the IPv6 one, refused because the server listens on 127.0.0.1, and hides the TLS
failure on the other. So when the last error shows no TLS failure, a plain HOST:PORT target is
probed once per address (a fail-fast health check, the same credentials, the certificate still
checked against the host name dialled), and a TLS failure on any of them wins.

Both the friendly client and the index service (for its embedder) use it; it needs only grpcio
and grpcio-health-checking, which the client package depends on.
"""
from __future__ import annotations

import socket

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .connect_failures import tls_failure


def host_and_port(address: str) -> tuple[str, int] | None:
    """HOST:PORT (an IPv6 host in brackets too) -> (host, port); None when it is not that."""
    host, _, port = address.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()):
        return None
    return host.strip("[]"), int(port)


def health_check(channel: grpc.Channel, timeout: float) -> tuple[str | None, grpc.RpcError | None]:
    """(health status name, None) or (None, the error) of one fail-fast health check."""
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=timeout, wait_for_ready=False)
    except grpc.RpcError as exc:
        return None, exc
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status), None


def addresses(target: str) -> list[str]:
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


def _telling_address_error(target: str, credentials: grpc.ChannelCredentials | None,
                          timeout: float, server_name: str | None = None) -> str | None:
    """The first per-address connect error of `target` that shows a TLS failure, or None.
    `server_name`: the name certificates are checked against (default: the host dialled)."""
    name = server_name or (host_and_port(target) or ("", 0))[0]
    for address in addresses(target):
        options = [("grpc.ssl_target_name_override", name)] if credentials else []
        channel = (grpc.secure_channel(address, credentials, options=options) if credentials
                   else grpc.insecure_channel(address))
        with channel:
            _, error = health_check(channel, timeout)
        detail = (error.details() or "") if error is not None else ""
        if tls_failure(detail):
            return detail
    return None


def with_hidden_tls_failure(detail: str, target: str, credentials: grpc.ChannelCredentials | None,
                            timeout: float = 1.0, server_name: str | None = None) -> str:
    """`detail` itself when it shows a TLS failure (or none can be found), else the TLS failure
    one of `target`'s addresses shows."""
    if tls_failure(detail) is not None:
        return detail
    return _telling_address_error(target, credentials, timeout, server_name) or detail
