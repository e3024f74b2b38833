"""Prometheus: the metrics HTTP endpoint and the per-RPC request/latency metrics."""
from __future__ import annotations

import logging

from prometheus_client import Counter, Histogram, start_http_server

log = logging.getLogger(__name__)

REQUESTS = Counter("grpc_server_requests_total", "gRPC calls handled, by method and status code",
                   ["method", "code"])
LATENCY = Histogram("grpc_server_latency_seconds", "gRPC call latency, by method", ["method"],
                    buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Serve /metrics on `port` (0 or negative: disabled)."""
    if port and port > 0:
        start_http_server(port, addr=host)
        log.info("metrics on http://%s:%d/metrics", host, port)
