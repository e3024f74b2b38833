"""Start-up checks without a service process (fast): flags refused at parse time with one line
(the log level, non-finite or overlong seconds, --metrics-port equal to --port, a malformed
--embedder), a taken --port or --metrics-port as a one-line StartError, the health service listed
by reflection, token-file errors naming the flag the path came from. The real services refusing
them: tests/test_startup_checks_e2e.py."""
from __future__ import annotations

import contextlib
import logging
import signal
import socket
from dataclasses import fields

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from embedder_service.config import EmbedderConfig
from index_service.config import IndexConfig, embedder_target
from servekit.access import AccessError, client_token, server_access
from servekit.errors import StartError
from servekit.lifecycle import bind, build_server, start_server
from servekit.metrics import serve_metrics
from servekit.tokens import Credentials
from tests.procs import free_port

INDEX = ["--catalog", "c.csv", "--data-dir", "d"]
SERVICES = [(EmbedderConfig, [], "EMBEDDER_"), (IndexConfig, INDEX, "INDEX_")]
TOKEN = "a-full-access-token-of-32-chars-x"


def refused(cls, argv, capsys, environ=None) -> str:
    """The one stderr line of a refused configuration (exit 2)."""
    with pytest.raises(SystemExit) as caught:
        cls.from_args(argv, environ or {})
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@contextlib.contextmanager
def taken_port():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        yield port


# -- 1. --log-level ------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, base, env", SERVICES)
@pytest.mark.parametrize("level", ["verbose", "10", "info!"])
def test_a_bad_log_level_is_one_line_naming_the_flag(cls, base, env, level, capsys):
    line = refused(cls, [*base, "--log-level", level], capsys)
    assert "--log-level" in line and "DEBUG, INFO, WARNING, ERROR or CRITICAL" in line, line
    assert repr(level) in line
    line = refused(cls, base, capsys, {env + "LOG_LEVEL": level})
    assert "--log-level" in line, line


@pytest.mark.parametrize("cls, base, env", SERVICES)
@pytest.mark.parametrize("level", ["debug", "INFO", "Warning", "warn", "error", "CRITICAL"])
def test_the_log_levels_logging_knows_still_work(cls, base, env, level):
    config = cls.from_args([*base, "--log-level", level], {})
    assert isinstance(logging.getLevelName(config.log_level.upper()), int)


# -- 2. --metrics-port ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls, base, env", SERVICES)
def test_a_metrics_port_equal_to_the_port_is_refused(cls, base, env, capsys):
    line = refused(cls, [*base, "--port", "50070", "--metrics-port", "50070"], capsys)
    assert "--metrics-port" in line and "--port" in line and "50070" in line, line
    assert cls.from_args([*base, "--port", "0", "--metrics-port", "0"], {}).metrics_port == 0
    assert cls.from_args([*base, "--port", "50070", "--metrics-port", "50071"], {})


def test_a_taken_metrics_port_is_one_start_error_naming_the_flag():
    with taken_port() as port, pytest.raises(StartError) as caught:
        serve_metrics(port, "127.0.0.1")
    message = str(caught.value)
    assert message == (f"cannot serve metrics on 127.0.0.1:{port}: address in use by another "
                       "process (--metrics-port)")
    assert "\n" not in message


# -- 3. float flags ------------------------------------------------------------------------------

def float_flags(cls) -> list[str]:
    return [f.name for f in fields(cls) if isinstance(getattr(cls(), f.name), float)]


def test_both_services_have_float_flags_to_check():
    assert {"grace_s", "token_reload_s", "max_batch_wait_ms"} <= set(float_flags(EmbedderConfig))
    assert {"embedder_wait_s", "compact_after_s", "hybrid_alpha"} <= set(float_flags(IndexConfig))


@pytest.mark.parametrize("cls, base, name",
                         [(c, b, n) for c, b, _ in SERVICES for n in float_flags(c)])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_every_float_flag_must_be_finite(cls, base, name, value, capsys):
    flag = "--" + name.replace("_", "-")
    line = refused(cls, [*base, flag, value], capsys)
    assert flag in line, line


@pytest.mark.parametrize("cls, base, env", SERVICES)
def test_non_finite_seconds_from_the_environment_are_refused(cls, base, env, capsys):
    line = refused(cls, base, capsys, {env + "GRACE_S": "nan"})
    assert "--grace-s" in line and "nan" in line, line
    line = refused(cls, [*base, "--token-reload-s", "1e12"], capsys)  # past threading.TIMEOUT_MAX
    assert "--token-reload-s" in line, line


def test_finite_values_and_documented_zeros_are_kept():
    config = EmbedderConfig.from_args(["--grace-s", "0", "--token-reload-s", "0",
                                       "--max-batch-wait-ms", "0"], {})
    assert (config.grace_s, config.token_reload_s, config.max_batch_wait_ms) == (0, 0, 0)
    config = IndexConfig.from_args([*INDEX, "--compact-after-s", "0", "--embedder-wait-s", "0",
                                    "--grace-s", "86400", "--hybrid-alpha", "1"], {})
    assert (config.compact_after_s, config.embedder_wait_s, config.grace_s) == (0, 0, 86400)


# -- 4. a taken --port ---------------------------------------------------------------------------

def test_a_taken_port_is_one_start_error_naming_the_flag():
    server = build_server(max_workers=1, max_message_bytes=1024)
    with taken_port() as port, pytest.raises(StartError) as caught:
        bind(server, f"127.0.0.1:{port}")
    message = str(caught.value)
    assert message == (f"cannot listen on 127.0.0.1:{port}: address in use by another process "
                       "(--port)")
    assert isinstance(caught.value, SystemExit) and "\n" not in message


def test_a_host_this_machine_does_not_have_names_host():
    server = build_server(max_workers=1, max_message_bytes=1024)
    with pytest.raises(StartError, match=r"on nosuchhost.invalid:50999: .*\(--host\)$"):
        bind(server, "nosuchhost.invalid:50999")


def test_a_free_port_still_binds():
    server = build_server(max_workers=1, max_message_bytes=1024)
    port = free_port()
    assert bind(server, f"127.0.0.1:{port}") == port
    assert bind(build_server(max_workers=1, max_message_bytes=1024), "127.0.0.1:0") > 0


# -- 5. --embedder -------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["localhost", "localhost:abc", "http://127.0.0.1:56001",
                                  "localhost:0", "localhost:70000", "a:1,dns:///b:2", "a:1,b",
                                  "dns:///", "dns:///embedder:abc"])
def test_a_malformed_embedder_address_is_refused_at_start(spec, capsys):
    line = refused(IndexConfig, [*INDEX, "--embedder", spec], capsys)
    assert "--embedder" in line and "HOST:PORT" in line and "127.0.0.1:50051" in line, line


@pytest.mark.parametrize("spec", ["127.0.0.1:50051", "localhost:50051", "embedder:50051",
                                  "[::1]:50051", "a:1, b:2", "dns:///embedder:50051",
                                  "dns:///embedder", "dns:embedder:50051",
                                  "dns://8.8.8.8/embedder:50051", "ipv4:127.0.0.1:1,127.0.0.1:2",
                                  "ipv6:[::1]:50051", "unix:/tmp/embedder.sock",
                                  "unix:///tmp/embedder.sock"])
def test_the_supported_embedder_forms_are_kept(spec):
    assert IndexConfig.from_args([*INDEX, "--embedder", spec], {}).embedder == spec


def test_embedder_targets_are_unchanged():
    assert embedder_target("localhost:50051") == "localhost:50051"
    assert embedder_target("dns:///embedder:50051") == "dns:///embedder:50051"
    assert embedder_target("127.0.0.1:1, 127.0.0.1:2") == "ipv4:127.0.0.1:1,127.0.0.1:2"
    # an ipv4: list is one URI target (it used to be split at its commas and fail at start)
    assert embedder_target("ipv4:127.0.0.1:1,127.0.0.1:2") == "ipv4:127.0.0.1:1,127.0.0.1:2"


# -- 6. reflection lists health ------------------------------------------------------------------

def test_reflection_lists_the_health_service():
    previous = signal.getsignal(signal.SIGHUP)
    server, _health, port = start_server(
        service_name="recsys.v1.Embedder", add_servicer=lambda s: None, address="127.0.0.1:0",
        credentials=None, interceptors=(), max_workers=2, max_message_bytes=1024)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            reply = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=10)))
        names = {service.name for service in reply.list_services_response.service}
        assert {"recsys.v1.Embedder", "grpc.health.v1.Health",
                "grpc.reflection.v1alpha.ServerReflection"} <= names, names
    finally:
        server.stop(0)
        signal.signal(signal.SIGHUP, previous)


# -- 7. token files name their flag --------------------------------------------------------------

@pytest.mark.parametrize("kwargs, env, flag", [
    ({"token_file": "/nope"}, {}, "--token-file"),
    ({"token_file": "FULL", "read_token_file": "/nope"}, {}, "--read-token-file"),
])
def test_an_unreadable_token_file_names_its_flag(tmp_path, kwargs, env, flag):
    full = tmp_path / "full"
    full.write_text(TOKEN + "\n")
    kwargs = {k: str(full) if v == "FULL" else v for k, v in kwargs.items()}
    with pytest.raises(AccessError) as caught:
        server_access(env=env, **kwargs)
    assert f"({flag}) /nope" in str(caught.value) and "cannot read" in str(caught.value)


def test_an_empty_token_file_names_its_flag(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n")
    with pytest.raises(AccessError, match=r"\(--token-file\) .*empty"):
        server_access(token_file=str(empty), env={})
    with pytest.raises(AccessError,
                       match=r"cannot read the token file \(--embedder-token-file\) /nope"):
        client_token("/nope", None)
    with pytest.raises(AccessError, match=r"\(--embedder-token-file\) .*empty"):
        client_token(str(empty), None)


def test_a_failed_reload_names_the_flag(tmp_path, caplog):
    full = tmp_path / "full"
    full.write_text(TOKEN + "\n")
    credentials = Credentials(str(full))
    full.write_text("\n")
    with caplog.at_level(logging.ERROR, logger="servekit.tokens"):
        assert credentials.reload() is False
    assert "(--token-file)" in caplog.text and credentials.first_full_token == TOKEN


@pytest.mark.parametrize("config_class", [EmbedderConfig, IndexConfig])
def test_every_flag_says_what_it_does_in_help(config_class, capsys):
    """The embedder's --help listed its flags with no word of what they do."""
    with pytest.raises(SystemExit):
        config_class.from_args(["--help"], environ={})
    text = capsys.readouterr().out
    for f in fields(config_class):
        flag = "--" + f.name.replace("_", "-")
        entry = text.split(f"  {flag} ", 1)[1].split("\n  --", 1)[0]
        described = entry.split("(env ", 1)[0].replace(flag.upper().lstrip("-").replace("-", "_"), "")
        assert len(described.split()) >= 2, f"{flag} has no description: {entry!r}"
