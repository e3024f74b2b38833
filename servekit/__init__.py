"""Server plumbing shared by embedder_service and index_service.

One job per module: errors (exception -> gRPC status table), health (grpc.health.v1 state),
lifecycle (build, serve, graceful SIGTERM), metrics (Prometheus endpoint and per-RPC interceptor).
"""
