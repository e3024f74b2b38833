"""`python -m embedder_service --help`: one line per flag (docs/embedder.md has the long form)."""

HELP = {
    "port": "gRPC port (0 = any free port)",
    "host": "interface to listen on; 0.0.0.0 in containers (also serves /metrics)",
    "model": "sentence-transformers model directory (empty: the packaged all-MiniLM-L6-v2)",
    "metrics_port": "Prometheus /metrics port; 0 = off",
    "backend": "what runs the forward pass: openvino or torch (the reference)",
    "precision": "auto (bf16 where the CPU has native bf16: AMX or AVX-512 BF16, else fp32), "
                 "fp32 or bf16",
    "cpu_features": "CPU flags to decide --precision auto with instead of the CPU's "
                    "(e.g. none: fp32)",
    "cache_dir": "where the OpenVINO backend keeps the converted model (empty: "
                 "$XDG_CACHE_HOME/recsys/openvino; off: convert at every start)",
    "openvino_threads": "OpenVINO inference threads; 0 = one per core",
    "max_batch_size": "most texts in one forward pass",
    "max_batch_tokens": "most padded tokens (texts x longest) in one forward pass",
    "batch_overhead_tokens": "fixed cost of a forward pass in token equivalents, for cutting "
                             "batches",
    "max_batch_wait_ms": "longest wait for calls already arriving to join a batch; a lone call "
                         "never waits",
    "max_texts_per_request": "most texts in one EmbedRequest",
    "max_chars_per_text": "most characters (code points) in one text",
    "max_queue_texts": "most texts waiting for the model; past it RESOURCE_EXHAUSTED",
    "max_message_bytes": "largest gRPC message sent or received",
    "torch_threads": "intra-op threads of the torch forward pass; 0 = one per core",
    "omp_wait_policy": "OpenMP wait policy of torch's threads (unless OMP_WAIT_POLICY is set)",
    "omp_spin_count": "how long OpenMP threads busy-wait before sleeping (GOMP_SPINCOUNT, "
                      "unless set); -1: the wait policy decides",
    "grpc_workers": "gRPC worker threads (a waiting call holds one)",
    "max_streams": "EmbedStream streams open at once (each holds a worker); past it "
                   "RESOURCE_EXHAUSTED; less than --grpc-workers",
    "stream_idle_s": "end a stream that sent nothing (and waits for nothing) this long; 0 = never",
    "grace_s": "seconds SIGTERM waits for calls in flight",
    "log_level": "DEBUG, INFO, WARNING, ERROR or CRITICAL",
    "tls_cert": "TLS certificate chain (PEM) to serve TLS; with --tls-key (empty: "
                "RECSYS_TLS_CERT)",
    "tls_key": "TLS private key (PEM) of --tls-cert (empty: RECSYS_TLS_KEY)",
    "tls_client_ca": "require client certificates signed by this CA (PEM): mutual TLS (empty: "
                     "RECSYS_TLS_CLIENT_CA)",
    "token_file": "file of tokens (one per line, '#' comments), one of which every call must "
                  "carry; health stays open (empty: no check)",
    "token_reload_s": "check the token file every N seconds and reload it when changed (SIGHUP "
                      "reloads at once); 0 = on SIGHUP only",
}
