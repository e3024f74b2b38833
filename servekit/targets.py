"""A flag naming the servers a service calls (the index service's --embedder) -> a gRPC target.

Forms: `HOST:PORT` (an IPv6 host in brackets); several comma-separated `HOST:PORT` (host names
resolved once, at start, into an `ipv4:` list the channel balances round-robin); or a gRPC URI
target, passed as is: `dns:///host:port` (round-robin over its addresses), `dns:host:port`,
`ipv4:`/`ipv6:` address lists, `unix:` paths.

`target_problem(spec, flag)` checks the form at start (a missing or non-numeric port, a URL such
as http://host:port, a URI target inside a list), so that a typo is one line naming the flag
instead of a dial to port 443 or a wait for a server that cannot answer.
"""
from __future__ import annotations

import socket

from client.address_probe import host_and_port

URI_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:")
FORMS = ("HOST:PORT, e.g. 127.0.0.1:50051; several comma-separated (a:50051,b:50051); or a "
         "dns:///host:port target")


def _parts(spec: str) -> list[str]:
    """The addresses of `spec`; a URI target is one part, whatever it holds (an ipv4: list)."""
    if spec.strip().lower().startswith(URI_SCHEMES):
        return [spec.strip()]
    return [p.strip() for p in spec.split(",") if p.strip()]


def _address_problem(part: str) -> str | None:
    """Why `part` is not HOST:PORT, or None."""
    if "/" in part or any(c.isspace() for c in part):
        return "is not HOST:PORT (no scheme or path)"
    split = host_and_port(part)
    if split is None or not split[0]:
        return "is not HOST:PORT (the port is missing or not a number)"
    if not 1 <= split[1] <= 65535:
        return f"has port {split[1]}, outside 1..65535"
    return None


def _uri_problem(part: str) -> str | None:
    """Why the URI target `part` cannot be dialled, or None. dns: names HOST or HOST:PORT (gRPC's
    default port, 443, without one); the other schemes need something after the scheme."""
    scheme, _, name = part.partition(":")
    if scheme.lower() != "dns":
        return None if name.strip("/") else "names no address"
    if name.startswith("//"):  # dns://[authority]/host:port
        _authority, slash, name = name[2:].partition("/")
        if not slash:
            return "is not dns:///HOST:PORT"
    if not name:
        return "names no host"
    has_port = "]:" in name if name.startswith("[") else ":" in name
    return _address_problem(name) if has_port else None


def target_problem(spec: str, flag: str) -> str | None:
    """What is wrong with the form of `spec` (one line naming `flag` and the right form), or
    None."""
    parts = _parts(spec)
    if not parts:
        return f"{flag} must name at least one address: {FORMS}"
    for part in parts:
        if part.lower().startswith(URI_SCHEMES):
            found = _uri_problem(part) if len(parts) == 1 else "is a URI target, not HOST:PORT"
        else:
            found = _address_problem(part)
        if found:
            return f"{flag}: {part!r} {found}: give {FORMS}"
    return None


def grpc_target(spec: str, flag: str) -> str:
    """The gRPC target of `spec`: one address or a URI target as is; several comma-separated
    addresses -> an `ipv4:` list (host names resolved once, here). ValueError naming `flag`."""
    parts = _parts(spec)
    if len(parts) == 1:
        return parts[0]
    addresses = []
    for part in parts:
        split = host_and_port(part)
        if split is None:
            raise ValueError(f"{flag}: {part!r} is not HOST:PORT")
        host, port = split
        try:
            infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ValueError(f"{flag}: cannot resolve {host!r}: {exc.strerror}") from None
        addresses += [f"{info[4][0]}:{info[4][1]}" for info in infos[:1]]
    return "ipv4:" + ",".join(addresses)
