"""Prometheus: the metrics HTTP endpoint, the per-RPC request/latency metrics, and the access
control's: calls rejected by the token check (by method and reason) and token reloads."""
from __future__ import annotations

import errno
import logging

from prometheus_client import Counter, Histogram, start_http_server

from .errors import StartError

log = logging.getLogger(__name__)

REQUESTS = Counter("grpc_server_requests_total", "gRPC calls handled, by method and status code",
                   ["method", "code"])
LATENCY = Histogram("grpc_server_latency_seconds", "gRPC call latency, by method", ["method"],
                    buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
# reason: missing (no authorization metadata), malformed (not one 'Bearer <token>'),
# unknown_token (no configured token), read_only (a read-only token on a call that needs more).
# method: the full method name, or "unknown" for a method the server does not have (bounded).
REJECTED = Counter("grpc_server_rejected_calls_total",
                   "gRPC calls refused by the token check, by method and reason",
                   ["method", "reason"])
TOKEN_RELOADS = Counter("grpc_server_token_reloads_total",
                        "token file reloads (SIGHUP or a changed file), by result: ok or error "
                        "(the previous tokens stay)", ["result"])


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Serve /metrics on `port` (0 or negative: disabled). A port that cannot be bound (taken)
    raises StartError naming --metrics-port."""
    if port and port > 0:
        try:
            start_http_server(port, addr=host)
        except OSError as exc:
            reason = ("address in use by another process" if exc.errno == errno.EADDRINUSE
                      else (exc.strerror or str(exc)).lower())
            raise StartError(f"cannot serve metrics on {host}:{port}: {reason} "
                             "(--metrics-port)") from None
        log.info("metrics on http://%s:%d/metrics", host, port)
