"""Server plumbing shared by embedder_service and index_service.

One job per module: errors (the table: exception -> gRPC status; StartError: a server that cannot
start, one line naming the flag), interceptors (applies it, counts and times every call),
access (who may call: TLS and tokens, resolved at start), auth (the token check: which role each
method needs), tokens (the tokens of each role, from files, reloaded live), tls (the server's
certificate), health (grpc.health.v1 state), lifecycle (build, wire, bind, serve, graceful
SIGTERM, SIGHUP reload), metrics (the Prometheus endpoint, per-RPC and rejected-call metrics),
flags (one frozen config dataclass from flags and environment, and the checks both services
share), targets (a flag naming the servers a service calls -> a gRPC target, its form checked at
start), deadlines (the caller's remaining time; None for a call sent without a deadline),
text (whether a text has content: more than whitespace and invisible characters).
"""
