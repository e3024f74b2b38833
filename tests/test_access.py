"""Access control of the real services: both with TLS (a CA and certificate made in the test) and a
shared token; the index service calls the embedder over TLS with the token. Also: health stays open,
plaintext and token-less callers are refused, an unusable file stops a service with one line, and
the embedder listens on loopback unless told otherwise."""
from __future__ import annotations

import socket
import subprocess
import sys

import grpc
import pytest

from client import RecsysClient
from client.errors import UnauthenticatedError
from client.generated.recsys.v1 import embedder_pb2, embedder_pb2_grpc, index_pb2, index_pb2_grpc
from embedder_service.config import EmbedderConfig
from tests.procs import ROOT, free_port, health_status, running_pair
from tests.test_index_support import write_tiny_csv
from tests.test_tls import Pki

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

TOKEN = "access-test-token_42"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("access-pki"), "access")


@pytest.fixture(scope="module")
def tls(pki):
    return grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())


@pytest.fixture(scope="module")
def services(pki, tls, tmp_path_factory):
    """(embedder, index): both TLS + token; the index dials the embedder by its certificate's name."""
    tmp = tmp_path_factory.mktemp("access")
    token_file = tmp / "token"
    token_file.write_text(TOKEN + "\n")
    secure = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
              "--token-file", str(token_file)]
    with running_pair(write_tiny_csv(tmp / "tiny.csv"), tmp / "data", embedder_args=secure,
                      index_args=[*secure, "--embedder-tls-ca", str(pki.ca)],
                      embedder_host="localhost", credentials=tls) as pair:
        yield pair


def _client(embedder, index, pki, **kwargs) -> RecsysClient:
    return RecsysClient(index=index.address, embedder=embedder.address, tls_ca=pki.ca, timeout=30,
                        **kwargs)


def test_search_goes_client_to_index_to_embedder_over_tls_with_the_token(services, pki):
    embedder, index = services
    with _client(embedder, index, pki, token=TOKEN) as client:
        hits = client.search("a desk to write at", k=3)  # a query the index has never embedded
        assert len(hits) == 3 and "desk" in hits[0].product.title.lower()
        assert client.similar("t01", k=2)[0].product.id != "t01"
        assert len(client.embed(["lamp"]).vectors[0]) == 384
        assert client.model_info().dimension == 384
        assert client.stats().product_count == 10


def test_without_the_token_every_call_is_unauthenticated_with_a_how_to(services, pki):
    embedder, index = services
    with _client(embedder, index, pki) as client:
        with pytest.raises(UnauthenticatedError, match=r"authorization.*Bearer.*--token-file"):
            client.search("desk", k=3)
        with pytest.raises(UnauthenticatedError, match=r"Embedder/Embed: no 'authorization'"):
            client.embed(["desk"])
    with _client(embedder, index, pki, token="not-the-token") as client:
        with pytest.raises(UnauthenticatedError, match="wrong token"):
            client.stats()
        with pytest.raises(UnauthenticatedError, match="wrong token"):
            client.model_info()


def test_health_needs_no_token_but_does_need_tls(services, tls):
    for process, name in zip(services, ("recsys.v1.Embedder", "recsys.v1.Index")):
        assert health_status(process.address, credentials=tls) == "SERVING"
        assert health_status(process.address, name, credentials=tls) == "SERVING"
        assert health_status(process.address) is None  # plaintext: no handshake, no answer


def test_a_plaintext_client_cannot_call_a_tls_service(services):
    embedder, index = services
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    with grpc.insecure_channel(index.address) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            index_pb2_grpc.IndexStub(channel).GetStats(index_pb2.GetStatsRequest(), timeout=5,
                                                       metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    with grpc.insecure_channel(embedder.address) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            embedder_pb2_grpc.EmbedderStub(channel).GetModelInfo(
                embedder_pb2.GetModelInfoRequest(), timeout=5, metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def _non_loopback_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_the_embedder_listens_on_loopback_unless_told_otherwise(services):
    assert EmbedderConfig.from_args([], environ={}).host == "127.0.0.1"
    assert EmbedderConfig.from_args([], environ={"EMBEDDER_HOST": "0.0.0.0"}).host == "0.0.0.0"
    address = _non_loopback_address()
    if address is None:
        pytest.skip("no non-loopback interface to try")
    with socket.socket() as s, pytest.raises(OSError):
        s.settimeout(2)
        s.connect((address, services[0].port))  # the embedder's port, from another interface


def _start_fails(module: str, *args: str) -> str:
    """The stderr of a service that must refuse to start: non-zero exit, one line, no traceback."""
    done = subprocess.run([sys.executable, "-m", module, "--port", str(free_port()), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_an_unusable_certificate_or_token_file_stops_the_service_with_one_line(pki, tmp_path):
    missing = tmp_path / "missing.pem"
    line = _start_fails("embedder_service", "--tls-cert", str(missing), "--tls-key",
                        str(pki.server_key))
    assert str(missing) in line and "--tls-cert" in line
    index = ["--catalog", str(write_tiny_csv(tmp_path / "tiny.csv")), "--data-dir",
             str(tmp_path / "data"), "--embedder", f"127.0.0.1:{free_port()}"]
    line = _start_fails("index_service", *index, "--tls-cert", str(pki.server_cert),
                        "--tls-key", str(pki.server_cert))  # the certificate as its own key
    assert str(pki.server_cert) in line and "PRIVATE KEY" in line
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    line = _start_fails("index_service", *index, "--token-file", str(empty))
    assert str(empty) in line and "empty" in line
    read = tmp_path / "read-token"
    read.write_text("a-read-token-of-32-characters-xx\n")
    line = _start_fails("index_service", *index, "--read-token-file", str(read))
    assert "--read-token-file" in line and "needs a full-access token too" in line
    line = _start_fails("index_service", *index, "--token-file", str(read), "--read-token-file",
                        str(read))
    assert "also in the full-access token file" in line and "a-read-token" not in line
    line = _start_fails("index_service", *index, "--embedder-tls-ca", str(missing))
    assert str(missing) in line and "--embedder-tls-ca" in line


def test_an_index_with_the_wrong_embedder_token_says_so_at_start(services, pki, tmp_path):
    embedder, _ = services
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-embedders-token")
    line = _start_fails_logging(
        "index_service", "--embedder", f"localhost:{embedder.port}", "--embedder-tls-ca",
        str(pki.ca), "--embedder-token-file", str(wrong), "--catalog",
        str(write_tiny_csv(tmp_path / "tiny.csv")), "--data-dir", str(tmp_path / "data"))
    assert "refused the index service's token" in line and "--embedder-token-file" in line


def _start_fails_logging(module: str, *args: str) -> str:
    """The last stderr line of a service that stops after it started logging (no traceback)."""
    done = subprocess.run([sys.executable, "-m", module, "--port", str(free_port()), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip().splitlines()[-1]
