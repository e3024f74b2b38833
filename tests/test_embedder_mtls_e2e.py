"""The index service -> embedder hop over mutual TLS, end to end: a real embedder that requires a
client certificate signed by its CA (--tls-client-ca), a real index service that presents one
(--embedder-tls-client-cert/--embedder-tls-client-key), and what an operator reads when one side
is set up wrong: a one-line start-up error that names the flag to look at, not "is it running?".
The CA and certificates are made in the test (tests.test_tls.Pki)."""
from __future__ import annotations

import subprocess
import sys

import grpc
import pytest

from client import RecsysClient, UnavailableError
from client.access import ClientTls
from index_service.embedder_client import EmbedderClient
from servekit.errors import Unavailable
from tests.procs import ROOT, ServiceProcess, free_port, running_pair
from tests.test_index_support import write_tiny_csv
from tests.test_tls import Pki, other_pki, pki  # noqa: F401 (fixtures: two CAs, certificates)

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


def _with_client_cert(pki: Pki) -> grpc.ChannelCredentials:
    return ClientTls(pki.ca, pki.client_cert, pki.client_key).credentials()


@pytest.fixture(scope="module")
def services(pki, tmp_path_factory):
    """(embedder, index): the embedder requires client certificates; the plaintext index service
    dials it as "localhost" (a name in its certificate) and presents the client certificate."""
    tmp = tmp_path_factory.mktemp("mtls")
    embedder_args = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
                     "--tls-client-ca", str(pki.ca)]
    index_args = ["--embedder-tls-ca", str(pki.ca), "--embedder-tls-client-cert",
                  str(pki.client_cert), "--embedder-tls-client-key", str(pki.client_key)]
    embedder_port = free_port()
    embedder = ServiceProcess("embedder_service", ["--port", str(embedder_port), *embedder_args],
                              embedder_port, credentials=_with_client_cert(pki))
    with embedder.serving_until_clean_exit():
        with running_pair(write_tiny_csv(tmp / "tiny.csv"), tmp / "data", embedder=embedder,
                          embedder_host="localhost", index_args=index_args) as pair:
            yield pair


def test_the_index_builds_and_searches_through_an_embedder_that_requires_mutual_tls(services):
    embedder, index = services
    with RecsysClient(index=index.address, timeout=30) as client:
        assert client.stats().product_count == 10  # the catalog was embedded over mutual TLS
        hits = client.search("a desk to write at", k=3)  # a query the index has never embedded
        assert len(hits) == 3 and "desk" in hits[0].product.title.lower()
        assert client.stats().embedder_target.endswith(f":{embedder.port}")


def test_a_direct_client_needs_a_client_certificate_too(services, pki):
    embedder, _ = services
    with RecsysClient(embedder=embedder.address, credentials=_with_client_cert(pki),
                      timeout=30) as client:
        assert client.model_info().dimension == 384
    with RecsysClient(embedder=embedder.address, tls_ca=pki.ca, timeout=10) as client:
        with pytest.raises(UnavailableError, match=r"Socket closed.*require a client certificate"
                                                   r".*--tls-client-cert"):
            client.model_info()


def test_an_embedder_client_without_the_certificate_says_which_flags_to_check(services, pki):
    """The index service's own channel: a call that cannot connect names --embedder-tls-*."""
    embedder, _ = services
    target = f"localhost:{embedder.port}"
    credentials = ClientTls(pki.ca).credentials()
    channel_client = EmbedderClient(target, display=target, timeout_s=5, cache_size=0,
                                    credentials=credentials)
    try:
        with pytest.raises(Unavailable) as caught:
            channel_client.embed(["a desk"])
        assert f"the embedder at {target} cannot be reached" in caught.value.message
        assert "--embedder-tls-client-cert/--embedder-tls-client-key" in caught.value.message
        assert "require a client certificate" in channel_client.why_not_serving()
    finally:
        channel_client.close()


def _index_start_error(embedder_port: int, tmp_path, *args: str) -> str:
    """The one stderr line of an index service that cannot start on the embedder at
    localhost:`embedder_port` with these --embedder-tls-* `args` (3 s wait)."""
    done = subprocess.run(
        [sys.executable, "-m", "index_service", "--port", str(free_port()), "--embedder",
         f"localhost:{embedder_port}", "--embedder-wait-s", "3", "--catalog",
         str(write_tiny_csv(tmp_path / "tiny.csv")), "--data-dir", str(tmp_path / "data"),
         *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("index_service: cannot start: the embedder at localhost:"), line
    assert "was not SERVING within 3 s" in line and "is it running" not in line, line
    return line


def test_an_index_without_a_client_certificate_says_so_at_start(services, pki, tmp_path):
    line = _index_start_error(services[0].port, tmp_path, "--embedder-tls-ca", str(pki.ca))
    assert "require a client certificate signed by its CA" in line
    assert "--embedder-tls-client-cert/--embedder-tls-client-key" in line


def test_a_client_certificate_from_another_ca_is_refused_the_same_way(services, pki, other_pki,
                                                                      tmp_path):
    line = _index_start_error(services[0].port, tmp_path, "--embedder-tls-ca", str(pki.ca),
                              "--embedder-tls-client-cert", str(other_pki.client_cert),
                              "--embedder-tls-client-key", str(other_pki.client_key))
    assert "require a client certificate signed by its CA" in line


def test_an_embedder_certificate_from_another_ca_is_named(services, other_pki, tmp_path):
    line = _index_start_error(services[0].port, tmp_path, "--embedder-tls-ca", str(other_pki.ca),
                              "--embedder-tls-client-cert", str(other_pki.client_cert),
                              "--embedder-tls-client-key", str(other_pki.client_key))
    assert "CERTIFICATE_VERIFY_FAILED" in line
    assert "certificate is not signed by the CA in --embedder-tls-ca" in line


def test_a_plaintext_index_is_told_the_embedder_may_want_tls(services, tmp_path):
    line = _index_start_error(services[0].port, tmp_path)
    assert "it may serve TLS only (--embedder-tls-ca)" in line


def test_a_tls_index_is_told_a_plaintext_embedder_does_not_speak_tls(shared_embedder, pki,
                                                                     tmp_path):
    line = _index_start_error(shared_embedder.port, tmp_path, "--embedder-tls-ca", str(pki.ca))
    assert "does not speak TLS: call it without TLS (no --embedder-tls-ca)" in line
