"""Container healthcheck: exit 0 when a gRPC server reports SERVING on grpc.health.v1, else 1.

    python docker/healthcheck.py 127.0.0.1:50051 [--service NAME] [--timeout SECONDS]
        [--tls-ca PEM] [--tls-client-cert PEM --tls-client-key PEM] [--tls-server-name NAME]

Plaintext unless a trust root is found, in this order:
  1. --tls-ca PEM, else the environment variable RECSYS_HEALTHCHECK_TLS_CA;
  2. else the server's own certificate, when the container's environment gives it to the server:
     EMBEDDER_TLS_CERT, INDEX_TLS_CERT or RECSYS_TLS_CERT (every one that is set). The check then
     trusts exactly that certificate (pinned; gRPC accepts a leaf as a trust root), so a compose
     service that turns TLS on with these variables needs no change to its healthcheck.
A server given its certificate by a command-line flag instead needs `--tls-ca` here.

The certificate must name the host dialled (e.g. 127.0.0.1). One made for another name (e.g. the
compose service name `embedder`) needs --tls-server-name NAME (env
RECSYS_HEALTHCHECK_TLS_SERVER_NAME): the name checked against the certificate instead.
A server that requires client certificates (mutual TLS, --tls-client-ca) needs
--tls-client-cert/--tls-client-key (env RECSYS_HEALTHCHECK_TLS_CLIENT_CERT/_KEY), signed by that CA.

Exit 1, with one line on stdout, for anything but SERVING, including an unusable TLS file.
Uses only grpcio and grpcio-health-checking (in the image already): no curl, no downloaded probe.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

CA_ENV = "RECSYS_HEALTHCHECK_TLS_CA"
CLIENT_CERT_ENV = "RECSYS_HEALTHCHECK_TLS_CLIENT_CERT"
CLIENT_KEY_ENV = "RECSYS_HEALTHCHECK_TLS_CLIENT_KEY"
SERVER_NAME_ENV = "RECSYS_HEALTHCHECK_TLS_SERVER_NAME"
SERVER_CERT_ENVS = ("EMBEDDER_TLS_CERT", "INDEX_TLS_CERT", "RECSYS_TLS_CERT")


class SetupError(ValueError):
    """A TLS setting cannot be used; the message is one line naming the file."""


def _read_pem(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise SetupError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise SetupError(f"the {what} {path} is not a PEM file")
    return data


def credentials(ca: str = "", client_cert: str = "", client_key: str = "",
                env: Mapping[str, str] | None = None) -> grpc.ChannelCredentials | None:
    """TLS credentials from the flags, else the environment (see the module docstring);
    None: plaintext."""
    env = os.environ if env is None else env
    explicit = ca or env.get(CA_ENV, "")
    roots = [explicit] if explicit else list(dict.fromkeys(
        env[name] for name in SERVER_CERT_ENVS if env.get(name)))
    client_cert = client_cert or env.get(CLIENT_CERT_ENV, "")
    client_key = client_key or env.get(CLIENT_KEY_ENV, "")
    if bool(client_cert) != bool(client_key):
        raise SetupError("a client certificate needs both --tls-client-cert and --tls-client-key")
    if not roots:
        if client_cert:
            raise SetupError(f"--tls-client-cert needs a trust root: --tls-ca (or {CA_ENV})")
        return None
    root_pem = b"\n".join(_read_pem(path, "trusted certificate") for path in roots)
    cert = _read_pem(client_cert, "client certificate") if client_cert else None
    key = _read_pem(client_key, "client private key") if client_key else None
    return grpc.ssl_channel_credentials(root_certificates=root_pem, private_key=key,
                                        certificate_chain=cert)


def check(address: str, service: str = "", timeout: float = 3.0,
          tls: grpc.ChannelCredentials | None = None, server_name: str = "") -> tuple[bool, str]:
    """(serving, what was seen) for the server at `address`; over TLS when `tls` is given."""
    if tls is None:
        channel = grpc.insecure_channel(address)
    else:
        options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
        channel = grpc.secure_channel(address, tls, options=options)
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            return False, f"{exc.code().name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, status


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="HOST:PORT of the gRPC server")
    parser.add_argument("--service", default="", help="service name to check (default: the server)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    parser.add_argument("--tls-ca", default="", help=f"check over TLS, trusting this PEM (env "
                        f"{CA_ENV}; else the server's own {'/'.join(SERVER_CERT_ENVS)}, if set)")
    parser.add_argument("--tls-client-cert", default="",
                        help=f"client certificate (PEM) for mutual TLS (env {CLIENT_CERT_ENV})")
    parser.add_argument("--tls-client-key", default="",
                        help=f"private key (PEM) of --tls-client-cert (env {CLIENT_KEY_ENV})")
    parser.add_argument("--tls-server-name", default="",
                        help="name to check the server's certificate against instead of the "
                             f"dialled host (env {SERVER_NAME_ENV})")
    args = parser.parse_args(argv)
    target = f"{args.address} {args.service or '(server)'}"
    try:
        tls = credentials(args.tls_ca, args.tls_client_cert, args.tls_client_key, env=env)
    except SetupError as exc:
        print(f"{target}: {exc}")
        return 1
    server_name = args.tls_server_name or env.get(SERVER_NAME_ENV, "")
    serving, seen = check(args.address, args.service, args.timeout, tls, server_name)
    print(f"{target}{' (TLS)' if tls else ''}: {seen}")
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
