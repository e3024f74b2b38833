"""Build a gRPC server with health and reflection, serve it, and stop gracefully on SIGTERM;
SIGHUP reloads (the token files: servekit.tokens) and never stops the server. A port that cannot
be bound is a StartError (servekit.errors): one line naming --port (or --host)."""
from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import threading
from concurrent import futures

import grpc
from grpc_reflection.v1alpha import reflection

from .errors import StartError
from .health import HEALTH_SERVICE_NAME, Health
from .interceptors import ServiceInterceptor

log = logging.getLogger(__name__)


def build_server(*, max_workers: int, max_message_bytes: int,
                 extra_interceptors: tuple = (), max_concurrent_rpcs: int | None = None) -> grpc.Server:
    """A thread-pool server; calls past `max_concurrent_rpcs` get RESOURCE_EXHAUSTED at once."""
    options = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        # ServiceInterceptor outermost: what the inner ones (the token check) reject is answered
        # from the same error table and counted in the same metrics as the handlers' errors.
        interceptors=[ServiceInterceptor(), *extra_interceptors],
        options=options,
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )


def add_reflection(server: grpc.Server, service_full_names: list[str]) -> None:
    reflection.enable_server_reflection([*service_full_names, reflection.SERVICE_NAME], server)


def _bind_problem(address: str) -> tuple[str, str] | None:
    """(why, flag) when `address` (HOST:PORT) cannot be listened on, found by binding it
    ourselves first (SO_REUSEADDR, as gRPC does); None when one of its addresses can be (or the
    port is 0). Spares the operator gRPC's own log line, which names no flag and no reason."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or int(port) == 0:
        return None
    try:
        infos = socket.getaddrinfo(host.strip("[]") or None, int(port), type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot resolve {host!r}: {getattr(exc, 'strerror', None) or exc}", "--host"
    if host == "localhost":  # gRPC listens on both loopbacks, whatever the resolver says
        infos += [(socket.AF_INET6, socket.SOCK_STREAM, 0, "", ("::1", int(port), 0, 0))]
    failures = []
    for family, kind, proto, _name, sockaddr in infos:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(sockaddr)
            return None
        except OSError as exc:  # taken, not this host's, or no IPv6 here
            failures.append(exc)
    codes = {exc.errno for exc in failures}
    if errno.EADDRINUSE in codes:
        return "address in use by another process", "--port"
    if errno.EACCES in codes:
        return "permission denied (a port below 1024 needs privileges)", "--port"
    reason = failures[0].strerror if failures and failures[0].strerror else "address not available"
    return reason[:1].lower() + reason[1:], "--host"


def bind(server: grpc.Server, address: str, credentials: grpc.ServerCredentials | None = None) -> int:
    """Bind and return the port (useful with port 0). A taken port or an address this host does
    not have raises StartError: one line naming the flag."""
    problem = _bind_problem(address)
    if problem:
        raise StartError(f"cannot listen on {address}: {problem[0]} ({problem[1]})")
    try:
        port = (server.add_secure_port(address, credentials) if credentials
                else server.add_insecure_port(address))
    except RuntimeError:  # grpcio raises "Failed to bind" (older versions returned 0)
        port = 0
    if port == 0:
        hint = " (or gRPC refused the TLS certificate and key)" if credentials else ""
        raise StartError(f"cannot listen on {address}: address in use or not available{hint} "
                         "(--host/--port)")
    return port


def _stop_now(signum: int) -> None:
    """A second SIGTERM/SIGINT: exit at once (1), as after SIGKILL: in-flight calls end, the
    index's shutdown compaction is skipped (its log is replayed at the next start)."""
    log.warning("second signal %s: stopping now (in-flight calls cancelled, no shutdown work)",
                signal.Signals(signum).name)
    logging.shutdown()
    os._exit(1)


def serve_until_signal(server: grpc.Server, health: Health, *, grace_s: float,
                       on_stop=None, on_ready=None) -> None:
    """Block until SIGTERM/SIGINT, then: NOT_SERVING, drain in-flight calls for up to grace_s,
    run `on_stop`, return; a second signal meanwhile stops at once (_stop_now). The server must
    already be started. `on_ready` (set SERVING) runs once the handlers are in place, so that a
    SIGTERM right after SERVING drains, not kills."""
    stopping = threading.Event()

    def _stop(signum, _frame):
        if stopping.is_set():
            _stop_now(signum)
        stopping.set()
        log.info("signal %s: draining calls (grace %.1fs; a second signal stops at once)",
                 signal.Signals(signum).name, grace_s)
        health.shutdown()
        threading.Thread(target=lambda: server.stop(grace_s), daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if on_ready is not None:
        on_ready()
    server.wait_for_termination()
    if on_stop is not None:
        on_stop()
    log.info("stopped")


def reload_on_sighup(on_reload=None) -> None:
    """SIGHUP runs `on_reload()` in a thread (e.g. ServerAccess.reload: the token files) and
    never stops the process (its default action would). Call from the main thread."""
    def _reload(_signum, _frame):
        if on_reload is None:
            log.info("SIGHUP: nothing to reload")
            return
        threading.Thread(target=on_reload, name="sighup-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, _reload)


def start_server(*, service_name: str, add_servicer, address: str, credentials,
                 interceptors: tuple, max_workers: int, max_message_bytes: int,
                 max_concurrent_rpcs: int | None = None,
                 on_reload=None) -> tuple[grpc.Server, Health, int]:
    """Build, wire (the service, health NOT_SERVING, reflection), bind and start a server;
    from now on SIGHUP calls `on_reload` (reload_on_sighup), even while the service loads.

    Returns (server, health, port): the caller loads what it serves, then `health.set_serving(True)`
    and `serve_until_signal(...)`."""
    server = build_server(max_workers=max_workers, max_message_bytes=max_message_bytes,
                          extra_interceptors=interceptors, max_concurrent_rpcs=max_concurrent_rpcs)
    add_servicer(server)
    health = Health(server, [service_name])
    add_reflection(server, [service_name, HEALTH_SERVICE_NAME])
    port = bind(server, address, credentials)
    reload_on_sighup(on_reload)
    _stop_while_starting(server)
    server.start()
    return server, health, port


def _stop_while_starting(server: grpc.Server) -> None:
    """Until serve_until_signal takes over, SIGTERM/SIGINT end the start-up where it is: one log
    line, the server stopped, exit 0 (SystemExit unwinds the loading; every artifact is written
    atomically). Without this, SIGTERM killed the process silently (143), Ctrl-C printed a
    KeyboardInterrupt traceback, and as PID 1 in a container a SIGTERM did nothing at all."""
    def _stop(signum, _frame):
        log.info("signal %s during start-up: stopping", signal.Signals(signum).name)
        server.stop(0)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
