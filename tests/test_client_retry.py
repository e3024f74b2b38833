"""RecsysClient's transport behaviour against small in-process gRPC servers whose failures are
scripted: which statuses are retried and how often, the bearer token, TLS, wait_ready.
(The same client against the real services is test_client.py.)"""
import shutil
import subprocess
import threading
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from client import (NO_RETRY, DeadlineExceededError, InvalidArgumentError, Product,
                    RecsysClient, RetryPolicy, UnavailableError)
from client.recsys_client import UPSERT_TIMEOUT_S
from client.generated.recsys.v1 import index_pb2, index_pb2_grpc
from tests.procs import free_port

pytestmark = pytest.mark.timeout(120)
FAST = RetryPolicy(max_attempts=5, initial_backoff_s=0.01, max_backoff_s=0.05)


class ScriptedIndex(index_pb2_grpc.IndexServicer):
    """GetStats fails with `code` for the first `failures` calls, then answers."""

    def __init__(self, failures=0, code=grpc.StatusCode.UNAVAILABLE):
        self.failures, self.code = failures, code
        self.calls, self.metadata = 0, []
        self.lock = threading.Lock()

    def GetStats(self, request, context):
        with self.lock:
            self.calls += 1
            call = self.calls
        self.metadata.append(dict(context.invocation_metadata()))
        if call <= self.failures:
            context.abort(self.code, f"scripted failure {call}")
        return index_pb2.Stats(product_count=call, dimension=384)


class DeadlineRecorder(index_pb2_grpc.IndexServicer):
    """Records the time each write call had left when it arrived."""

    def __init__(self):
        self.remaining = {}

    def UpsertProducts(self, request, context):
        self.remaining.setdefault("upsert", []).append(context.time_remaining())
        return index_pb2.UpsertProductsResponse(upserted=len(request.products))

    def DeleteProducts(self, request, context):
        self.remaining.setdefault("delete", []).append(context.time_remaining())
        return index_pb2.DeleteProductsResponse(deleted=len(request.product_ids))


def serve(servicer, port=0, credentials=None):
    server = grpc.server(futures.ThreadPoolExecutor(4))
    index_pb2_grpc.add_IndexServicer_to_server(servicer, server)
    checker = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    address = f"127.0.0.1:{port}"
    port = (server.add_secure_port(address, credentials) if credentials
            else server.add_insecure_port(address))
    server.start()
    return server, checker, f"127.0.0.1:{port}"


@pytest.fixture
def scripted():
    servers = []

    def start(servicer, **kwargs):
        server, checker, address = serve(servicer, **kwargs)
        servers.append(server)
        return checker, address

    yield start
    for server in servers:
        server.stop(None)


def test_unavailable_is_retried_until_it_succeeds(scripted):
    index = ScriptedIndex(failures=3)
    _, address = scripted(index)
    with RecsysClient(index=address, retry=FAST, timeout=10) as client:
        assert client.stats().product_count == 4
    assert index.calls == 4


def test_retries_stop_after_max_attempts_with_the_servers_message(scripted):
    index = ScriptedIndex(failures=100)
    _, address = scripted(index)
    with RecsysClient(index=address, retry=FAST, timeout=10) as client:
        with pytest.raises(UnavailableError, match="scripted failure 5"):
            client.stats()
    assert index.calls == 5


@pytest.mark.parametrize("code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL,
                                  grpc.StatusCode.RESOURCE_EXHAUSTED])
def test_other_statuses_are_never_retried(scripted, code):
    index = ScriptedIndex(failures=1, code=code)
    _, address = scripted(index)
    with RecsysClient(index=address, retry=FAST, timeout=10) as client:
        with pytest.raises(Exception) as info:
            client.stats()
        assert info.value.code == code
    assert index.calls == 1


def test_retries_can_be_turned_off(scripted):
    index = ScriptedIndex(failures=1)
    _, address = scripted(index)
    with RecsysClient(index=address, retry=NO_RETRY, timeout=10) as client:
        with pytest.raises(UnavailableError):
            client.stats()
        assert client.stats().product_count == 2
    assert index.calls == 2


def test_the_token_travels_as_bearer_metadata_on_every_call(scripted):
    index = ScriptedIndex(failures=1)
    _, address = scripted(index)
    with RecsysClient(index=address, retry=FAST, token="t0ken") as client:
        client.stats()
    assert [m.get("authorization") for m in index.metadata] == ["Bearer t0ken"] * 2
    with RecsysClient(index=address) as anonymous:
        anonymous.stats()
    assert "authorization" not in index.metadata[-1]


def test_wait_ready_follows_health_until_serving_and_times_out_otherwise(scripted):
    checker, address = scripted(ScriptedIndex())
    checker.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    with RecsysClient(index=address) as client:
        with pytest.raises(DeadlineExceededError, match="last health status: NOT_SERVING"):
            client.wait_ready(timeout=0.5)
        timer = threading.Timer(0.3, checker.set,
                                ("", health_pb2.HealthCheckResponse.SERVING))
        timer.start()
        client.wait_ready(timeout=30)
        timer.join()


def test_wait_ready_waits_for_a_server_that_starts_later(scripted):
    port = free_port()
    starter = threading.Timer(0.5, scripted, (ScriptedIndex(),), {"port": port})
    starter.start()
    with RecsysClient(index=f"127.0.0.1:{port}") as client:
        client.wait_ready(timeout=30)
        assert client.stats().product_count == 1
    starter.join()


def test_calls_after_close_fail_clearly(scripted):
    _, address = scripted(ScriptedIndex())
    client = RecsysClient(index=address)
    client.close()
    with pytest.raises(Exception, match="closed"):
        client.stats()
    with pytest.raises(InvalidArgumentError, match="timeout"):
        RecsysClient(index=address, timeout=-1)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_with_a_ca_file(scripted, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    _, address = scripted(ScriptedIndex(), credentials=credentials)
    with RecsysClient(index=address, tls_ca=cert, token="t", timeout=10) as client:
        assert client.stats().dimension == 384
    with RecsysClient(index=address, timeout=2, retry=NO_RETRY) as plaintext:
        with pytest.raises(UnavailableError):
            plaintext.stats()


def test_an_upsert_gets_time_to_embed_its_products_unless_told_otherwise(scripted):
    recorder = DeadlineRecorder()
    _, address = scripted(recorder)
    with RecsysClient(index=address, timeout=10.0) as client:
        client.upsert([Product(id="a", title="Oak desk")])
        client.upsert([Product(id="a", title="Oak desk")], timeout=3.0)
        client.delete(["a"])
    long, told = recorder.remaining["upsert"]
    # Lower bounds loose: on a loaded machine a call can take a second to arrive; what matters is
    # which deadline each call got (120, 3 and 10 s apart).
    assert UPSERT_TIMEOUT_S - 10 < long <= UPSERT_TIMEOUT_S + 0.1 and 1 < told <= 3.1
    assert 3 < recorder.remaining["delete"][0] <= 10.1  # other calls: the client's timeout


def test_a_deadline_spent_connecting_is_reported_as_unreachable():
    address = f"127.0.0.1:{free_port()}"  # nobody listens: gRPC retries until the deadline
    with RecsysClient(index=address, timeout=0.3) as client:
        with pytest.raises(UnavailableError, match=f"cannot reach the index service at {address} "
                                                   r"\(no connection before the deadline\)"):
            client.stats()


def test_a_client_runs_no_thread_of_its_own_so_closing_it_cannot_race_one():
    """grpcio's channel.subscribe runs a polling thread that dies with "Channel closed!" on stderr
    when the channel closes between two polls: the client must not start one."""
    before = set(threading.enumerate())
    with RecsysClient(index=f"127.0.0.1:{free_port()}", timeout=0.3) as client:
        with pytest.raises(UnavailableError):
            client.stats()
        assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []
