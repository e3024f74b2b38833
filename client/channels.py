"""gRPC channels for the client: retries of UNAVAILABLE through the service config, optional TLS.

gRPC itself does the retrying (grpc.enable_retries + a retryPolicy in grpc.service_config): only
UNAVAILABLE is retried, with exponential backoff, and never past the call's deadline.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import grpc

# Every message of ours fits far below this (a 1,000-product page, 1,000 vectors of 384 floats).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC retryPolicy for UNAVAILABLE. Attempt n waits a random time in
    [0, min(initial_backoff_s * multiplier**(n-1), max_backoff_s)]; gRPC caps attempts at 5."""
    max_attempts: int = 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 1.0
    multiplier: float = 2.0

    def __post_init__(self):
        if not 1 <= self.max_attempts <= 5:
            raise ValueError(f"max_attempts must be 1..5 (gRPC's limit), not {self.max_attempts}")
        if self.initial_backoff_s <= 0 or self.max_backoff_s <= 0 or self.multiplier <= 0:
            raise ValueError("backoff times and multiplier must be positive")

    def service_config(self, services: list[str]) -> str:
        if self.max_attempts == 1:
            return json.dumps({"methodConfig": []})
        return json.dumps({"methodConfig": [{
            "name": [{"service": s} for s in services],
            "retryPolicy": {
                "maxAttempts": self.max_attempts,
                "initialBackoff": f"{self.initial_backoff_s:.3f}s",
                "maxBackoff": f"{self.max_backoff_s:.3f}s",
                "backoffMultiplier": self.multiplier,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }]})


NO_RETRY = RetryPolicy(max_attempts=1)


def channel_credentials(tls_ca: str | bytes | Path | None = None,
                        credentials: grpc.ChannelCredentials | None = None
                        ) -> grpc.ChannelCredentials | None:
    """`credentials` as given, else TLS trusting the CA in `tls_ca` (a PEM path or bytes), else
    None (plaintext)."""
    if credentials is not None or tls_ca is None:
        return credentials
    pem = tls_ca if isinstance(tls_ca, bytes) else Path(tls_ca).read_bytes()
    return grpc.ssl_channel_credentials(root_certificates=pem)


def open_channel(target: str, *, services: list[str], retry: RetryPolicy,
                 tls_ca: str | bytes | Path | None = None,
                 credentials: grpc.ChannelCredentials | None = None,
                 tls_server_name: str | None = None) -> grpc.Channel:
    """A channel to `target` ("host:port", "dns:///host:port", ...). TLS when `credentials` are
    given (e.g. client.access.ClientTls(...).credentials(), mutual TLS included), or `tls_ca`
    (a PEM file path or the PEM bytes of the CA that signed the server's certificate)."""
    options = [
        ("grpc.enable_retries", 1 if retry.max_attempts > 1 else 0),
        ("grpc.service_config", retry.service_config(services)),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        # A restarted server is found again within ~2 s, not after gRPC's default of up to 120 s.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]
    credentials = channel_credentials(tls_ca, credentials)
    if credentials is None:
        return grpc.insecure_channel(target, options=options)
    if tls_server_name:
        options.append(("grpc.ssl_target_name_override", tls_server_name))
    return grpc.secure_channel(target, credentials, options=options)


class Connectivity:
    """Whether a channel has a connection, asked when a call has failed: a deadline that passed
    while no connection could be made is reported as unreachable, and an UNAVAILABLE that came
    over a live connection as the server's answer, not as a failure to reach it.

    It asks the channel's core for its state at that moment instead of subscribing
    (channel.subscribe): a subscription runs a grpcio polling thread that, when the channel is
    closed between two of its polls, dies with "Cannot monitor channel state: Channel closed!" on
    the caller's stderr (grpcio 1.85; grpcio's own close() has the same race). The core channel is
    grpcio's private attribute, so a grpcio without it answers "unknown" (False): the error is
    then classified by its status and text alone."""

    # grpc_connectivity_state values (grpc-core): CONNECTING and TRANSIENT_FAILURE mean no
    # connection is up.
    _NO_CONNECTION = (grpc.ChannelConnectivity.CONNECTING.value[0],
                      grpc.ChannelConnectivity.TRANSIENT_FAILURE.value[0])

    _READY = grpc.ChannelConnectivity.READY.value[0]

    def __init__(self, channel: grpc.Channel):
        self._channel = channel

    def _state(self) -> int | None:
        core = getattr(self._channel, "_channel", None)
        try:
            return core.check_connectivity_state(False)
        except Exception:  # noqa: BLE001 - another grpcio, or a closed channel: unknown
            return None

    @property
    def failing(self) -> bool:
        return self._state() in self._NO_CONNECTION

    @property
    def connected(self) -> bool:
        """A connection is up: an UNAVAILABLE that came over it is the server's own answer (a
        service it depends on is down), whatever its text says."""
        return self._state() == self._READY
