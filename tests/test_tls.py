"""servekit.tls (+ servekit.auth over TLS): certificates made in the test, a real server on
loopback; TLS clients that trust the CA get through, plaintext and untrusting clients do not."""
from __future__ import annotations

import datetime
import ipaddress
import re

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from client import RecsysClient, UnavailableError
from client.access import ClientTls, TlsError, bearer_metadata
from client.address_probe import with_hidden_tls_failure
from client.connect_failures import tls_failure
from index_service.embedder_diagnosis import no_connection
from servekit.auth import with_token
from servekit.tls import ServerTls
from tests.procs import free_port
from tests.test_auth import TOKEN, code_of, health_of, model_info, running_server

pytestmark = pytest.mark.timeout(60)


# -- certificates ----------------------------------------------------------------------------------

def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path, key) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def _certificate(subject: x509.Name, key, issuer: x509.Name, issuer_key, *, ca: bool,
                 sans=()) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class Pki:
    """A CA, a server certificate for localhost / 127.0.0.1 and a client certificate, as files."""

    def __init__(self, directory, prefix: str):
        self.dir = directory
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name(f"{prefix} test CA")
        ca_cert = _certificate(ca_name, ca_key, ca_name, ca_key, ca=True)
        self.ca = self._write(f"{prefix}-ca.pem", ca_cert)
        sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        self.server_cert, self.server_key = self._leaf(f"{prefix}-server", "localhost", ca_cert,
                                                       ca_key, sans)
        self.client_cert, self.client_key = self._leaf(f"{prefix}-client", "recsys-client",
                                                       ca_cert, ca_key, [])

    def _write(self, name, cert):
        path = self.dir / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def _leaf(self, name, common_name, ca_cert, ca_key, sans):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(_name(common_name), key, ca_cert.subject, ca_key, ca=False, sans=sans)
        _write_key(self.dir / f"{name}.key", key)
        return self._write(f"{name}.pem", cert), self.dir / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"), "recsys")


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("other-pki"), "stranger")


@pytest.fixture(scope="module")
def tls_address(pki):
    """TLS + token."""
    with running_server(TOKEN, ServerTls(pki.server_cert, pki.server_key).credentials()) as address:
        yield address


def _tls_channel(address: str, tls: ClientTls) -> grpc.Channel:
    return grpc.secure_channel(address, tls.credentials())


def _unreachable(channel) -> None:
    code, details = code_of(lambda: health_of(channel))
    assert code == grpc.StatusCode.UNAVAILABLE, details


# -- TLS -----------------------------------------------------------------------------------------

def test_a_client_that_trusts_the_ca_gets_through_with_the_token(pki, tls_address):
    with _tls_channel(tls_address, ClientTls(ca=pki.ca)) as channel:
        assert health_of(channel) == "SERVING"                    # health: no token needed
        code, _ = code_of(lambda: model_info(channel))
        assert code == grpc.StatusCode.UNAUTHENTICATED           # TLS alone is not enough
        code, _ = code_of(lambda: model_info(channel, metadata=bearer_metadata("nope")))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert model_info(channel, metadata=bearer_metadata(TOKEN)).model_name == "tiny"
        assert model_info(with_token(channel, TOKEN)).model_name == "tiny"


def test_the_server_name_localhost_is_in_the_certificate(pki, tls_address):
    port = tls_address.rsplit(":", 1)[1]
    with _tls_channel(f"localhost:{port}", ClientTls(ca=pki.ca)) as channel:
        assert health_of(channel) == "SERVING"


def test_a_plaintext_client_cannot_talk_to_a_tls_server(tls_address):
    with grpc.insecure_channel(tls_address) as channel:
        _unreachable(channel)
        code, _ = code_of(lambda: model_info(channel, metadata=bearer_metadata(TOKEN)))
        assert code == grpc.StatusCode.UNAVAILABLE


def test_a_client_that_trusts_another_ca_is_refused(other_pki, tls_address):
    with _tls_channel(tls_address, ClientTls(ca=other_pki.ca)) as channel:
        _unreachable(channel)


def test_a_tls_client_cannot_talk_to_a_plaintext_server(pki):
    with running_server(None) as address, _tls_channel(address, ClientTls(ca=pki.ca)) as channel:
        _unreachable(channel)


def test_mutual_tls_requires_a_client_certificate_from_the_ca(pki, other_pki):
    credentials = ServerTls(pki.server_cert, pki.server_key, client_ca=pki.ca).credentials()
    with running_server(TOKEN, credentials) as address:
        with _tls_channel(address, ClientTls(ca=pki.ca)) as channel:
            _unreachable(channel)                                 # no client certificate
        stranger = ClientTls(ca=pki.ca, cert=other_pki.client_cert, key=other_pki.client_key)
        with _tls_channel(address, stranger) as channel:
            _unreachable(channel)                                 # signed by another CA
        ours = ClientTls(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
        with _tls_channel(address, ours) as channel:
            assert health_of(channel) == "SERVING"
            assert model_info(with_token(channel, TOKEN)).model_name == "tiny"


@pytest.fixture(scope="module")
def mtls_port(pki):
    """The port of a server on 127.0.0.1 only that requires a client certificate."""
    credentials = ServerTls(pki.server_cert, pki.server_key, client_ca=pki.ca).credentials()
    with running_server(TOKEN, credentials) as address:
        yield int(address.rsplit(":", 1)[1])


def _refused_on_ipv6(port: int) -> str:
    """grpc-core's text when "localhost" ends on ::1, as CI printed it."""
    return ("failed to connect to all addresses; last error: UNKNOWN: "
            f"ipv6:%5B::1%5D:{port}: Failed to connect to remote host: Connection refused")


def test_a_refusal_on_ipv6_does_not_hide_the_tls_failure_on_ipv4(pki, mtls_port):
    """"localhost" is ::1 and 127.0.0.1; the server listens on 127.0.0.1. The probe finds the
    TLS failure there, and the index service's message names its client-certificate flags."""
    target, no_cert = f"localhost:{mtls_port}", ClientTls(ca=pki.ca).credentials()
    found = with_hidden_tls_failure(_refused_on_ipv6(mtls_port), target, no_cert)
    assert f"ipv4:127.0.0.1:{mtls_port}" in found and tls_failure(found), found
    said = no_connection(_refused_on_ipv6(mtls_port), target, no_cert)
    assert "--embedder-tls-client-cert/--embedder-tls-client-key" in said
    assert "is it running" not in said


def test_the_probe_keeps_a_refusal_where_no_address_shows_tls(pki):
    closed = free_port()
    refused = _refused_on_ipv6(closed)
    assert with_hidden_tls_failure(refused, f"localhost:{closed}",
                                   ClientTls(ca=pki.ca).credentials()) == refused


def test_the_clients_error_names_the_client_certificate_whichever_address_failed_last(
        pki, mtls_port):
    with RecsysClient(embedder=f"localhost:{mtls_port}", tls_ca=pki.ca, timeout=10) as client:
        with pytest.raises(UnavailableError) as caught:
            client.model_info()
    assert "require a client certificate" in str(caught.value), caught.value
    assert "--tls-client-cert" in str(caught.value) and "is it running" not in str(caught.value)


# -- configuration errors name the file and the flag -----------------------------------------------

def test_an_unreadable_file_is_named(pki, tmp_path):
    missing = tmp_path / "missing.pem"
    with pytest.raises(TlsError, match=rf"TLS certificate \(--tls-cert\) {re.escape(str(missing))}"):
        ServerTls(missing, pki.server_key).credentials()
    with pytest.raises(TlsError, match=rf"TLS private key \(--tls-key\) {re.escape(str(missing))}"):
        ServerTls(pki.server_cert, missing).credentials()
    with pytest.raises(TlsError, match=rf"--tls-client-ca\) {re.escape(str(missing))}"):
        ServerTls(pki.server_cert, pki.server_key, missing).credentials()
    with pytest.raises(TlsError, match=rf"--tls-ca\) {re.escape(str(missing))}"):
        ClientTls(ca=missing).credentials()
    with pytest.raises(TlsError, match="cannot read .*Is a directory"):
        ClientTls(ca=tmp_path).credentials()


def test_a_file_of_the_wrong_kind_is_named(pki, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a certificate\n")
    with pytest.raises(TlsError, match=rf"{re.escape(str(text))} is not a PEM file with a CERTIFICATE"):
        ServerTls(text, pki.server_key).credentials()
    with pytest.raises(TlsError, match="--tls-key.* is not a PEM file with a PRIVATE KEY"):
        ServerTls(pki.server_cert, pki.server_cert).credentials()      # the cert as the key


def test_from_flags_reads_flags_then_the_environment(pki):
    assert ServerTls.from_flags(env={}) is None
    tls = ServerTls.from_flags(str(pki.server_cert), str(pki.server_key), env={})
    assert tls == ServerTls(pki.server_cert, pki.server_key)
    env = {"RECSYS_TLS_CERT": str(pki.server_cert), "RECSYS_TLS_KEY": str(pki.server_key),
           "RECSYS_TLS_CLIENT_CA": str(pki.ca)}
    assert ServerTls.from_flags(env=env) == ServerTls(pki.server_cert, pki.server_key, pki.ca)
    assert ServerTls.from_flags(None, None, None, env={**env, "RECSYS_TLS_CLIENT_CA": ""}) == \
        ServerTls(pki.server_cert, pki.server_key)
    assert ClientTls.from_flags(env={}) is None
    assert ClientTls.from_flags(enabled=True, env={}) == ClientTls()
    assert ClientTls.from_flags(env={"RECSYS_TLS_CA": str(pki.ca)}) == ClientTls(ca=pki.ca)


@pytest.mark.parametrize("kwargs, says", [
    ({"cert": "c.pem"}, "both --tls-cert and --tls-key"),
    ({"key": "k.pem"}, "both --tls-cert and --tls-key"),
    ({"client_ca": "ca.pem"}, "--tls-client-ca needs --tls-cert and --tls-key")])
def test_half_a_server_tls_setting_is_refused(kwargs, says):
    with pytest.raises(TlsError, match=re.escape(says)):
        ServerTls.from_flags(env={}, **kwargs)


def test_half_a_client_certificate_is_refused():
    with pytest.raises(TlsError, match="both --tls-client-cert and --tls-client-key"):
        ClientTls.from_flags(cert="c.pem", env={})


def test_a_key_that_does_not_belong_to_the_certificate_is_refused(pki, other_pki):
    with pytest.raises(TlsError, match=rf"{re.escape(str(pki.server_cert))} and key "
                                       rf"{re.escape(str(other_pki.server_key))}.*together"):
        ServerTls(pki.server_cert, other_pki.server_key).credentials()
    with pytest.raises(TlsError, match="--tls-client-cert/--tls-client-key"):
        ClientTls(ca=pki.ca, cert=pki.client_cert, key=pki.server_key).credentials()


def test_an_encrypted_key_is_refused_with_how_to(pki, tmp_path):
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    with pytest.raises(TlsError, match=rf"the key {encrypted} \(--tls-cert/--tls-key\) is "
                                       "encrypted, which is not supported"):
        ServerTls(pki.server_cert, encrypted).credentials()


def test_a_damaged_certificate_is_named(pki, tmp_path):
    damaged = tmp_path / "damaged.pem"
    damaged.write_text("-----BEGIN CERTIFICATE-----\nAAAAnotbase64!!\n-----END CERTIFICATE-----\n")
    with pytest.raises(TlsError, match=re.escape(str(damaged))):
        ServerTls(damaged, pki.server_key).credentials()
    with pytest.raises(TlsError, match=rf"--tls-ca\) {re.escape(str(damaged))}"):
        ClientTls(ca=damaged).credentials()


def test_a_port_in_use_says_so(pki, tls_address):
    from servekit.lifecycle import bind, build_server
    server = build_server(max_workers=1, max_message_bytes=1 << 20)
    credentials = ServerTls(pki.server_cert, pki.server_key).credentials()
    with pytest.raises(SystemExit, match=f"cannot listen on {tls_address}: address in use"):
        bind(server, tls_address, credentials)
