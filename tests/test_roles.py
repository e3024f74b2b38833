"""servekit.auth's roles on a real gRPC server in this process (fast): the index service's table of
read RPCs, deny by default, the metadata rules (exactly one `Bearer <token>`), the messages (the
RPC and the credential it needs, never a token) and the rejected-call metrics. The real index
service, plaintext and TLS, is tests/test_roles_e2e.py."""
from __future__ import annotations

import contextlib

import grpc
import pytest

from client.generated.recsys.v1 import index_pb2, index_pb2_grpc
from index_service.server import READ_METHODS, READ_RPCS, SERVICE_NAME
from servekit.auth import TokenAuthInterceptor, presented_token
from servekit.health import Health
from servekit.lifecycle import add_reflection, bind, build_server
from servekit.metrics import LATENCY, REJECTED, REQUESTS
from servekit.tokens import Credentials
from tests.test_auth import code_of, health_of, list_services

pytestmark = pytest.mark.timeout(120)

FULL, READ = "roles-full-token-0123456789", "roles-read-token-0123456789"
INDEX = index_pb2.DESCRIPTOR.services_by_name["Index"]
ALL_RPCS = [m.name for m in INDEX.methods]
WRITES = sorted(set(ALL_RPCS) - set(READ_RPCS))


def _empty_reply(rpc: str):
    reply = getattr(index_pb2, INDEX.methods_by_name[rpc].output_type.name)
    return lambda self, request, context: reply()


# Every RPC answers an empty message: here only the token check is under test.
StubIndex = type("StubIndex", (index_pb2_grpc.IndexServicer,),
                 {rpc: _empty_reply(rpc) for rpc in ALL_RPCS})


@contextlib.contextmanager
def index_server(credentials):
    server = build_server(max_workers=4, max_message_bytes=4 << 20, extra_interceptors=(
        TokenAuthInterceptor(credentials, read_methods=READ_METHODS),))
    index_pb2_grpc.add_IndexServicer_to_server(StubIndex(), server)
    Health(server, [SERVICE_NAME]).set_serving(True)
    add_reflection(server, [SERVICE_NAME])
    port = bind(server, "127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        server.stop(None)


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("roles")
    (tmp / "full").write_text(FULL + "\n")
    (tmp / "read").write_text(READ + "\n")
    with index_server(Credentials(str(tmp / "full"), str(tmp / "read"))) as channel:
        yield channel


def call(channel, rpc: str, token: str | None = None, metadata=()):
    method = channel.unary_unary(f"/{SERVICE_NAME}/{rpc}")
    metadata = list(metadata) + ([("authorization", f"Bearer {token}")] if token else [])
    return method(b"", timeout=5, metadata=metadata)


def test_the_writes_are_exactly_upsert_and_delete():
    """A new RPC needs a full-access token until someone adds it to READ_RPCS (deny by default);
    this fails so that the choice is made on purpose."""
    assert set(READ_RPCS) < set(ALL_RPCS)
    assert WRITES == ["DeleteProducts", "UpsertProducts"]
    assert READ_METHODS == {f"/recsys.v1.Index/{name}" for name in READ_RPCS}


@pytest.mark.parametrize("rpc", ALL_RPCS)
def test_each_rpc_by_token(channel, rpc):
    assert call(channel, rpc, FULL) == b""
    if rpc in READ_RPCS:
        assert call(channel, rpc, READ) == b""
    else:
        code, details = code_of(lambda: call(channel, rpc, READ))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert details.startswith(f"/recsys.v1.Index/{rpc}: the token given is read-only")
        assert "full-access (write) token" in details
    for token in (None, "wrong-token-0123456789abcdef"):
        code, details = code_of(lambda: call(channel, rpc, token))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        needs = "read-only token" if rpc in READ_RPCS else "full-access (write) token"
        assert rpc in details and needs in details and "authorization: Bearer <token>" in details
        assert FULL not in details and READ not in details and "wrong-token" not in details


def test_health_and_reflection_need_no_token(channel):
    assert health_of(channel) == "SERVING"
    assert SERVICE_NAME in list_services(channel)


def test_an_unknown_method_needs_the_full_token_and_is_counted_as_unknown(channel):
    rpc = "NoSuchRpc-f00"
    before = REJECTED.labels("unknown", "read_only")._value.get()
    code, _ = code_of(lambda: call(channel, rpc, READ))
    assert code == grpc.StatusCode.PERMISSION_DENIED        # deny by default, reveals nothing
    code, _ = code_of(lambda: call(channel, rpc, FULL))
    assert code == grpc.StatusCode.UNIMPLEMENTED
    assert REJECTED.labels("unknown", "read_only")._value.get() == before + 1
    # a caller cannot add label values: no metric names the method it made up
    labels = {s.labels.get("method") for m in (REQUESTS, LATENCY, REJECTED) for s in
              next(iter(m.collect())).samples}
    assert not [label for label in labels if label and rpc in label]


@pytest.mark.parametrize("metadata, reason", [
    ([], "missing"),
    ([("x-token", FULL)], "missing"),
    ([("authorization", "")], "malformed"),
    ([("authorization", "Bearer")], "malformed"),
    ([("authorization", "Bearer ")], "malformed"),
    ([("authorization", FULL)], "malformed"),
    ([("authorization", f"Basic {FULL}")], "malformed"),
    ([("authorization", f"Bearer {FULL} extra")], "malformed"),
    ([("authorization", f"Bearer {FULL}"), ("authorization", f"Bearer {FULL}")], "malformed"),
    ([("authorization", f"Bearer {FULL}"), ("authorization", "Bearer nope")], "malformed"),
    ([("authorization", "Bearer nope"), ("authorization", f"Bearer {FULL}")], "malformed"),
    ([("authorization", f"Bearer {READ}"), ("authorization", f"Bearer {FULL}")], "malformed"),
    ([("authorization", f"Bearer {FULL[:-1]}")], "unknown_token"),
    ([("authorization", "Bearer " + "a" * 7000)], "unknown_token"),
    ([("authorization", f"Bearer {READ}")], "read_only"),
])
def test_metadata_rules_and_rejection_counts(channel, metadata, reason):
    method = "/recsys.v1.Index/UpsertProducts"
    before = REJECTED.labels(method, reason)._value.get()
    code, details = code_of(lambda: call(channel, "UpsertProducts", metadata=metadata))
    expected = "PERMISSION_DENIED" if reason == "read_only" else "UNAUTHENTICATED"
    assert code.name == expected, details
    assert REJECTED.labels(method, reason)._value.get() == before + 1
    assert FULL not in details and READ not in details


@pytest.mark.parametrize("metadata, expected", [
    ([("authorization", f"bearer   {FULL} ")], (FULL, None)),
    ([("authorization", f"BEARER \t{FULL}\t")], (FULL, None)),
    ([("authorization", f"Bearer {FULL}\r\n")], (None, "malformed")),
    ([("authorization", f"Bearer {FULL}\x1c")], (None, "malformed")),
    ([("authorization", f"Bearer {FULL}".encode())], (FULL, None)),
    ([("authorization", "Bearer tökén-0123456789abcdef")], (None, "malformed")),
    ([("authorization", b"Bearer \xff\xfe-0123456789abcdef")], (None, "malformed")),
    ([("authorization", "Bearer tok\x00en-0123456789abcdef")], (None, "malformed")),
    ([("authorization-bin", f"Bearer {FULL}".encode())], (None, "missing")),
    (None, (None, "missing")),
])
def test_presented_token_reads_one_value_and_refuses_anything_else(metadata, expected):
    """What no gRPC client sends (bytes, non-ASCII) but a raw HTTP/2 peer can
    (tests/test_roles_e2e.py sends such bytes to the real service)."""
    assert presented_token(metadata) == expected


def test_without_a_read_role_every_rpc_needs_the_services_token():
    with index_server(FULL) as channel:
        assert call(channel, "Search", FULL) == b""
        code, details = code_of(lambda: call(channel, "Search"))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert "needs the service's token (server: --token-file)" in details
