"""docker/healthcheck.py over TLS, run as the container runs it (a process), against real gRPC
servers on loopback with certificates made in the test (the pki fixtures of tests.test_tls):
exit 0 when the server is SERVING; 1 when it cannot connect, does not trust the server, or a TLS
file is unusable."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from servekit.tls import ServerTls
from tests.procs import ROOT, free_port
from tests.test_auth import running_server
from tests.test_tls import other_pki, pki  # noqa: F401 (fixtures: a CA and its certificates)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tls_address(pki):
    with running_server(None, ServerTls(pki.server_cert, pki.server_key).credentials()) as address:
        yield address


@pytest.fixture(scope="module")
def mtls_address(pki):
    credentials = ServerTls(pki.server_cert, pki.server_key, pki.ca).credentials()
    with running_server(None, credentials) as address:
        yield address


def probe(address: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """The healthcheck as a process, with none of our variables but `env` in its environment."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("EMBEDDER_", "INDEX_", "RECSYS_"))}
    return subprocess.run([sys.executable, "docker/healthcheck.py", address, *args], cwd=ROOT,
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)


def assert_exit(done: subprocess.CompletedProcess, code: int, seen: str) -> None:
    assert done.returncode == code and seen in done.stdout, done.stdout + done.stderr
    assert len(done.stdout.strip().splitlines()) == 1, done.stdout


def test_serving_over_tls_trusting_the_ca(pki, tls_address):
    assert_exit(probe(tls_address, "--tls-ca", str(pki.ca)), 0, "(TLS): SERVING")
    assert_exit(probe(tls_address, RECSYS_HEALTHCHECK_TLS_CA=str(pki.ca)), 0, "(TLS): SERVING")


@pytest.mark.parametrize("variable", ["EMBEDDER_TLS_CERT", "INDEX_TLS_CERT", "RECSYS_TLS_CERT"])
def test_the_servers_own_certificate_variable_turns_tls_on(pki, tls_address, variable):
    """A compose service that sets its certificate variable keeps a working healthcheck."""
    assert_exit(probe(tls_address, **{variable: str(pki.server_cert)}), 0, "(TLS): SERVING")


def test_exit_1_when_it_cannot_connect(pki, other_pki, tls_address):
    closed = f"127.0.0.1:{free_port()}"
    assert_exit(probe(closed, "--tls-ca", str(pki.ca)), 1, "UNAVAILABLE")
    assert_exit(probe(tls_address), 1, "UNAVAILABLE")  # plaintext to a TLS server
    assert_exit(probe(tls_address, "--tls-ca", str(other_pki.ca)), 1, "UNAVAILABLE")
    # A pinned certificate is the only one trusted: another server's is refused.
    assert_exit(probe(tls_address, EMBEDDER_TLS_CERT=str(other_pki.server_cert)), 1, "UNAVAILABLE")


def test_server_name_override_is_what_the_certificate_is_checked_against(pki, tls_address):
    ca = ["--tls-ca", str(pki.ca)]
    assert_exit(probe(tls_address, *ca, "--tls-server-name", "localhost"), 0, "SERVING")
    assert_exit(probe(tls_address, *ca, "--tls-server-name", "embedder"), 1, "UNAVAILABLE")
    assert_exit(probe(tls_address, *ca, RECSYS_HEALTHCHECK_TLS_SERVER_NAME="embedder"), 1,
                "UNAVAILABLE")


def test_mutual_tls_needs_the_client_certificate(pki, mtls_address):
    ca = ["--tls-ca", str(pki.ca)]
    assert_exit(probe(mtls_address, *ca), 1, "UNAVAILABLE")
    assert_exit(probe(mtls_address, *ca, "--tls-client-cert", str(pki.client_cert),
                      "--tls-client-key", str(pki.client_key)), 0, "SERVING")
    assert_exit(probe(mtls_address, *ca, RECSYS_HEALTHCHECK_TLS_CLIENT_CERT=str(pki.client_cert),
                      RECSYS_HEALTHCHECK_TLS_CLIENT_KEY=str(pki.client_key)), 0, "SERVING")


def test_an_unusable_tls_setting_exits_1_with_one_line_naming_it(pki, tls_address, tmp_path):
    missing = tmp_path / "missing.pem"
    assert_exit(probe(tls_address, "--tls-ca", str(missing)), 1, f"cannot read the trusted "
                f"certificate {missing}")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    assert_exit(probe(tls_address, INDEX_TLS_CERT=str(not_pem)), 1, f"{not_pem} is not a PEM file")
    assert_exit(probe(tls_address, "--tls-ca", str(pki.ca), "--tls-client-cert",
                      str(pki.client_cert)), 1, "needs both --tls-client-cert and --tls-client-key")
