"""client.connect_failures: grpc-core's connect errors (texts copied from grpcio runs against our
services, as in tests/test_embedder_mtls_e2e.py) read as what to check, naming the caller's flags;
index_service.embedder_diagnosis's per-address probe and its not-ready / not-listening answers."""
from __future__ import annotations

from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from client.address_probe import addresses
from client.connect_failures import is_connect_failure, last_error, tls_failure, tls_hint
from client.errors import from_rpc_error
from index_service.embedder_diagnosis import why_not_serving
from tests.procs import free_port
from tests.test_client_convert import _RpcError

PREFIX = "failed to connect to all addresses; last error: "
SOCKET_CLOSED = PREFIX + "UNAVAILABLE: ipv4:127.0.0.1:33443: Socket closed"
REFUSED = (PREFIX + "UNKNOWN: ipv6:%5B::1%5D:33443: Failed to connect to remote host: "
           "Connection refused")
UNKNOWN_CA = (PREFIX + "UNKNOWN: ipv4:127.0.0.1:45111: Tls handshake failed (TSI_PROTOCOL_FAILURE):"
              " SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:"
              "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate: OK")
PLAINTEXT = (PREFIX + "UNKNOWN: ipv4:127.0.0.1:41321: Tls handshake failed (TSI_PROTOCOL_FAILURE):"
             " SSL_ERROR_SSL: error:100000f7:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:"
             " Invalid certificate verification context: OK")
WRONG_NAME = (PREFIX + "UNKNOWN: ipv4:127.0.0.1:40041: Custom verification check failed with "
              "error: UNAUTHENTICATED: Hostname Verification Check failed.")


@pytest.mark.parametrize("details, kind, says", [
    (SOCKET_CLOSED, "closed during set-up", "may serve TLS only (--ca), or require a client "
                                            "certificate signed by its CA (--cert/--key)"),
    (UNKNOWN_CA, "unknown CA", "certificate is not signed by the CA in --ca"),
    (PLAINTEXT, "plaintext server", "does not speak TLS: call it without TLS (no --ca)"),
    (WRONG_NAME, "name not in certificate", "dial it by a name in its certificate"),
    ("Ssl handshake failed: something new", "handshake", "check --ca and --cert/--key"),
])
def test_each_tls_failure_is_named_with_the_callers_flags(details, kind, says):
    assert is_connect_failure(details)
    assert tls_failure(details) == kind
    assert says in tls_hint(details, ca_flag="--ca", client_cert_flags="--cert/--key")


@pytest.mark.parametrize("details", [REFUSED, PREFIX + "UNAVAILABLE: DNS resolution failed",
                                     "Deadline Exceeded", ""])
def test_other_failures_get_no_tls_hint(details):
    assert tls_failure(details) is None
    assert tls_hint(details, ca_flag="--ca", client_cert_flags="--cert/--key") is None


def test_last_error_keeps_the_part_that_names_the_address_and_cuts_long_ones():
    assert last_error(SOCKET_CLOSED) == "UNAVAILABLE: ipv4:127.0.0.1:33443: Socket closed"
    long = last_error(PREFIX + "x" * 500)
    assert len(long) == 200 and long.endswith("...")


def test_the_clients_error_says_tls_where_it_used_to_say_is_it_running():
    error = from_rpc_error(_RpcError(grpc.StatusCode.UNAVAILABLE, SOCKET_CLOSED), service="index",
                           target="localhost:50052", method="Search")
    assert "cannot reach the index service at localhost:50052 (UNAVAILABLE: ipv4:" in str(error)
    assert "--tls-client-cert and --tls-client-key" in str(error)
    assert "is it running" not in str(error)
    refused = from_rpc_error(_RpcError(grpc.StatusCode.UNAVAILABLE, REFUSED), service="index",
                             target="localhost:50052", method="Search")
    assert "is it running? Start it (make run, docker-compose up)" in str(refused)
    assert "index= in Python, --index / RECSYS_INDEX in the CLI" in str(refused)


def test_an_unavailable_over_a_live_connection_is_the_services_answer_not_a_failure_to_reach_it():
    """The index service up, its embedder down: the index service's UNAVAILABLE quotes the
    embedder's connect failure, and the client must not send the user to the index service."""
    said = ("the embedder at 127.0.0.1:50051 cannot be reached: no connection (" + REFUSED + ")")
    error = from_rpc_error(_RpcError(grpc.StatusCode.UNAVAILABLE, said), service="index",
                           target="localhost:50052", method="Search", connected=True,
                           probe=lambda detail: pytest.fail("no address to probe"))
    assert str(error) == (f"Search on the index service at localhost:50052 failed: {said}: "
                          "retry later")
    assert error.code == grpc.StatusCode.UNAVAILABLE and error.details == said
    unconnected = from_rpc_error(_RpcError(grpc.StatusCode.UNAVAILABLE, said), service="index",
                                 target="localhost:50052", method="Search")
    assert str(unconnected).startswith("cannot reach the index service")  # text alone: unknown


def test_the_addresses_probed_for_a_host_name_include_both_loopbacks_for_localhost():
    assert addresses("localhost:50051")[:2] == ["127.0.0.1:50051", "[::1]:50051"]
    assert addresses("127.0.0.1:50051") == ["127.0.0.1:50051"]
    assert addresses("[::1]:50051") == ["[::1]:50051"]
    assert addresses("dns:///embedder:50051") == [] and addresses("unix:/tmp/socket") == []
    assert addresses("no-such-host.invalid:50051") == []
    assert addresses("localhost:http") == []


def test_why_not_serving_tells_not_ready_from_nothing_listening():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            said = why_not_serving(channel, f"127.0.0.1:{port}")
        assert said == "it answers, but its health is NOT_SERVING (still loading its model?)"
    finally:
        server.stop(None)
    closed = f"127.0.0.1:{free_port()}"
    with grpc.insecure_channel(closed) as channel:
        said = why_not_serving(channel, closed)
    assert said.startswith("no connection (") and "Connection refused" in said
    assert said.endswith("is it running, at that address (--embedder)?")
