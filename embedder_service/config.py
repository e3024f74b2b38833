"""EmbedderConfig: every setting of the embedder service, from flags with environment fallbacks.

Read once at start (`EmbedderConfig.from_args()`); handlers never read the environment.
Precedence: command-line flag > environment variable > default.
"""
from __future__ import annotations

from dataclasses import dataclass

from servekit.flags import common_problem, config_from_args

from .config_help import HELP
from .precision import PRECISIONS

MIB = 1024 * 1024
BACKENDS = ("openvino", "torch")


def env_var(name: str) -> str:
    """EMBEDDER_<NAME>, e.g. `max_batch_size` -> EMBEDDER_MAX_BATCH_SIZE."""
    return "EMBEDDER_" + name.upper()


@dataclass(frozen=True)
class EmbedderConfig:
    port: int = 50051
    host: str = "127.0.0.1"
    # Path of a sentence-transformers model directory; "" = the packaged all-MiniLM-L6-v2.
    model: str = ""
    # Prometheus /metrics port; 0 = no metrics endpoint.
    metrics_port: int = 0
    # What runs the forward pass: "openvino" (the default: same vectors, about 2.5x the texts/s of
    # torch on a CPU with native bf16, see docs/performance.md) or "torch" (the reference).
    backend: str = "openvino"
    # auto | fp32 | bf16. auto: bf16 where the CPU has native bf16 (AMX or AVX-512 BF16), else fp32
    # (embedder_service/precision.py); bf16 on a CPU without it is refused at start.
    precision: str = "auto"
    # Replaces the CPU flags read from /proc/cpuinfo in that decision (e.g. "none": no native
    # bf16, so auto means fp32); "" = detect.
    cpu_features: str = ""
    # The OpenVINO backend's converted model is kept here, so that a restart does not convert
    # again; "" = $XDG_CACHE_HOME/recsys/openvino (~/.cache/recsys/openvino); "off" = no cache.
    cache_dir: str = ""
    # OpenVINO inference threads; 0 = OpenVINO's default (one per core).
    openvino_threads: int = 0
    # Most texts in one forward pass. 16 since the OpenVINO default: its bf16 forward pass ran
    # fastest at batch 16 on length-sorted ikarus texts in-process, and the service at 16 beat 32
    # in both sweeps run (bench.backends --embedder-only --server-arg=--max-batch-size=N, both in
    # one process each): 32 one-text clients 2.61x vs 2.09x and 3.00x vs 1.54x of in-process
    # torch fp32, 64-text calls 2.28x vs 2.05x and 3.68x vs 2.77x (2026-12-01, on a machine loaded
    # by other test suites: noisy). max_batch_wait_ms 1 and batch_overhead_tokens 128 gave no
    # gain there, so those stay.
    max_batch_size: int = 16
    # Most padded tokens (texts x longest text) in one forward pass: caps a batch of long texts.
    max_batch_tokens: int = 16384
    # Fixed cost of one forward pass, in padded-token equivalents: the batcher cuts a length-sorted
    # window into batches minimizing padded tokens + this per batch.
    batch_overhead_tokens: int = 64
    # Longest wait (ms) for calls already arriving (being parsed and tokenized) to join a batch;
    # with no call arriving the model starts at once, so a lone call never waits.
    max_batch_wait_ms: float = 2.0
    max_texts_per_request: int = 1024
    max_chars_per_text: int = 20000
    # Texts waiting in the batching queue; past it calls get RESOURCE_EXHAUSTED.
    max_queue_texts: int = 8192
    max_message_bytes: int = 64 * MIB
    # torch intra-op threads for the forward pass; 0 = torch's default (one per core).
    torch_threads: int = 0
    # OpenMP wait policy for torch's threads, applied unless OMP_WAIT_POLICY is set already.
    # PASSIVE: idle threads sleep instead of spinning, so they leave the cores to the gRPC threads
    # (spinning made forward passes several times slower while calls were arriving).
    omp_wait_policy: str = "PASSIVE"
    # How long (spins) an OpenMP thread busy-waits before it sleeps (GOMP_SPINCOUNT, applied unless
    # set already; -1 leaves it to the wait policy). A short spin bridges the gaps between the
    # operators of one forward pass without holding the cores after it: one short query 15.7 ->
    # 11.3 ms and 32 one-text clients 0.90x -> 0.94x of in-process against spin 0 (PASSIVE alone).
    omp_spin_count: int = 10000
    # gRPC worker threads (each in-flight call holds one while it waits for its vectors).
    grpc_workers: int = 64
    # EmbedStream streams open at once (each holds a worker for its whole life): past it a new
    # stream gets RESOURCE_EXHAUSTED, so that streams never take every worker (health included).
    max_streams: int = 16
    # A stream with nothing sent and nothing in flight for this long is ended; 0 = never.
    stream_idle_s: float = 60.0
    # Seconds SIGTERM waits for in-flight calls before stopping.
    grace_s: float = 30.0
    log_level: str = "INFO"
    # TLS: PEM certificate chain and key (both, or neither: plaintext); with a client CA, callers
    # must present a certificate it signed (mutual TLS). Empty: RECSYS_TLS_CERT/_KEY/_CLIENT_CA.
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # A file of tokens (one per line, '#' comments), one of which every call must carry (health
    # stays open). Empty: no check (the client's RECSYS_TOKEN_FILE / RECSYS_TOKEN are refused).
    token_file: str = ""
    # Check the token file every N seconds and reload it when it changed (SIGHUP reloads at
    # once); 0 = on SIGHUP only.
    token_reload_s: float = 5.0

    @classmethod
    def from_args(cls, argv: list[str] | None = None,
                  environ: dict[str, str] | None = None) -> "EmbedderConfig":
        return config_from_args(
            cls, prog="python -m embedder_service", env_name=env_var, argv=argv, environ=environ,
            help=HELP,
            description="recsys.v1.Embedder gRPC server: texts -> sentence-transformers vectors. "
                        "Every flag falls back to the environment variable EMBEDDER_<FLAG>.")

    def problem(self) -> str | None:
        """What is wrong with these settings, or None."""
        common = common_problem(self)  # floats finite, --log-level, --metrics-port != --port
        if common:
            return common
        positive = ("max_batch_size", "max_batch_tokens", "batch_overhead_tokens", "max_texts_per_request", "max_chars_per_text",
                    "max_queue_texts", "max_message_bytes", "grpc_workers")
        for name in positive:
            if getattr(self, name) < 1:
                return f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
        if not 0 <= self.port <= 65535 or not 0 <= self.metrics_port <= 65535:
            return "ports must be in 0..65535"
        if self.max_streams < 1 or self.max_streams >= self.grpc_workers:
            return (f"--max-streams must be from 1 to --grpc-workers - 1 ({self.grpc_workers - 1}): "
                    f"streams hold a worker each, and unary calls and health need some; got "
                    f"{self.max_streams}")
        if self.stream_idle_s < 0:
            return "--stream-idle-s must not be negative (0: never)"
        if self.max_texts_per_request > self.max_queue_texts:
            return (f"--max-texts-per-request ({self.max_texts_per_request}) is more than "
                    f"--max-queue-texts ({self.max_queue_texts}): a request that large could "
                    "never be queued; raise the queue or lower the request limit")
        if self.omp_wait_policy.upper() not in ("PASSIVE", "ACTIVE", ""):
            return f"--omp-wait-policy must be PASSIVE, ACTIVE or empty, got {self.omp_wait_policy!r}"
        if self.omp_spin_count < -1:
            return f"--omp-spin-count must be -1 (the wait policy decides) or more, got {self.omp_spin_count}"
        if min(self.max_batch_wait_ms, self.grace_s, self.torch_threads, self.token_reload_s,
               self.openvino_threads) < 0:
            return ("--max-batch-wait-ms, --grace-s, --torch-threads, --openvino-threads and "
                    "--token-reload-s must not be negative")
        if self.backend not in BACKENDS:
            return f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}"
        if self.precision not in PRECISIONS:
            return f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
        return None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
