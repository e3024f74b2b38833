"""Server plumbing shared by embedder_service and index_service.

One job per module: errors (the table: exception -> gRPC status), interceptors (applies it,
counts and times every call), access (who may call: TLS and token, resolved at start), auth (the
token check), tls (the server's certificate), health (grpc.health.v1 state), lifecycle (build,
wire, bind, serve, graceful SIGTERM), metrics (the Prometheus endpoint and per-RPC metrics),
flags (one frozen config dataclass from flags and environment).
"""
