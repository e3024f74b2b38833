"""servekit.auth: a real gRPC server (servekit.lifecycle, health, reflection, a small Embedder
servicer) with the token interceptor; plaintext here, TLS in test_tls.py."""
from __future__ import annotations

import contextlib
import re

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from client.generated.recsys.v1 import embedder_pb2, embedder_pb2_grpc
from client.access import TokenError, bearer_metadata, load_token
from servekit.auth import TokenAuthInterceptor, with_token
from servekit.health import Health
from servekit.lifecycle import add_reflection, bind, build_server
from servekit.metrics import REQUESTS

pytestmark = pytest.mark.timeout(60)

TOKEN = "s3cret-token_0123456789"
EMBEDDER = embedder_pb2.DESCRIPTOR.services_by_name["Embedder"].full_name
INFO = f"/{EMBEDDER}/GetModelInfo"


class TinyEmbedder(embedder_pb2_grpc.EmbedderServicer):
    """Just enough of the contract to call: a fixed ModelInfo, and a stream that answers each
    request with one zero vector per text."""

    def GetModelInfo(self, request, context):
        return embedder_pb2.ModelInfo(model_name="tiny", dimension=2)

    def EmbedStream(self, request_iterator, context):
        for request in request_iterator:
            yield embedder_pb2.EmbedResponse(
                embeddings=[embedder_pb2.Embedding(values=[0.0, 0.0]) for _ in request.texts])


@contextlib.contextmanager
def running_server(token: str | None = None, credentials: grpc.ServerCredentials | None = None,
                   **auth_options):
    """A started server on a free loopback port; yields its address."""
    interceptors = (TokenAuthInterceptor(token, **auth_options),) if token else ()
    server = build_server(max_workers=4, max_message_bytes=4 << 20,
                          extra_interceptors=interceptors)
    embedder_pb2_grpc.add_EmbedderServicer_to_server(TinyEmbedder(), server)
    health = Health(server, [EMBEDDER])
    add_reflection(server, [EMBEDDER])
    port = bind(server, "127.0.0.1:0", credentials)
    server.start()
    health.set_serving(True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def model_info(channel, **kwargs):
    return embedder_pb2_grpc.EmbedderStub(channel).GetModelInfo(
        embedder_pb2.GetModelInfoRequest(), timeout=5, **kwargs)


def health_of(channel) -> str:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def list_services(channel) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    return [s.name for reply in replies for s in reply.list_services_response.service]


def code_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details()


@pytest.fixture(scope="module")
def address():
    with running_server(TOKEN) as address:
        yield address


@pytest.fixture
def channel(address):
    with grpc.insecure_channel(address) as channel:
        yield channel


def test_the_right_token_passes(channel):
    assert model_info(channel, metadata=bearer_metadata(TOKEN)).model_name == "tiny"
    assert model_info(with_token(channel, TOKEN)).dimension == 2


def test_scheme_is_case_insensitive_and_padding_is_ignored(channel):
    assert model_info(channel, metadata=[("authorization", f"bearer  {TOKEN} ")]).dimension == 2


@pytest.mark.parametrize("metadata, says", [
    ((), "no 'authorization' metadata"),
    ((("authorization", "Bearer wrong-token"),), "wrong token"),
    ((("authorization", f"Bearer {TOKEN}x"),), "wrong token"),
    ((("authorization", f"Bearer {TOKEN[:-1]}"),), "wrong token"),
    ((("authorization", TOKEN),), "is not 'Bearer <token>'"),
    ((("authorization", f"Basic {TOKEN}"),), "is not 'Bearer <token>'"),
    ((("authorization", "Bearer "),), "is not 'Bearer <token>'"),
    ((("x-token", TOKEN),), "no 'authorization' metadata"),
])
def test_missing_or_wrong_token_is_unauthenticated_with_how_to(channel, metadata, says):
    before = REQUESTS.labels(INFO, "UNAUTHENTICATED")._value.get()
    code, details = code_of(lambda: model_info(channel, metadata=metadata))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert says in details and "authorization: Bearer <token>" in details
    assert TOKEN not in details
    assert REQUESTS.labels(INFO, "UNAUTHENTICATED")._value.get() == before + 1


def test_streaming_calls_are_checked_too(channel):
    stub = embedder_pb2_grpc.EmbedderStub(channel)
    requests = [embedder_pb2.EmbedRequest(texts=["a", "b"])] * 3
    code, _ = code_of(lambda: list(stub.EmbedStream(iter(requests), timeout=5)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    replies = list(stub.EmbedStream(iter(requests), timeout=5, metadata=bearer_metadata(TOKEN)))
    assert [len(r.embeddings) for r in replies] == [2, 2, 2]
    streamed = embedder_pb2_grpc.EmbedderStub(with_token(channel, TOKEN)).EmbedStream(
        iter(requests), timeout=5)
    assert len(list(streamed)) == 3


def test_unknown_methods_do_not_reveal_themselves_without_a_token(channel):
    call = channel.unary_unary("/recsys.v1.Nothing/Here")
    code, _ = code_of(lambda: call(b"", timeout=5))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, _ = code_of(lambda: call(b"", timeout=5, metadata=bearer_metadata(TOKEN)))
    assert code == grpc.StatusCode.UNIMPLEMENTED


def test_health_and_reflection_stay_open(channel):
    assert health_of(channel) == "SERVING"
    assert EMBEDDER in list_services(channel)


def test_reflection_can_be_closed_too():
    with running_server(TOKEN, open_prefixes=("/grpc.health.v1.Health/",)) as address, \
            grpc.insecure_channel(address) as channel:
        assert health_of(channel) == "SERVING"
        code, _ = code_of(lambda: list_services(channel))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert EMBEDDER in list_services(with_token(channel, TOKEN))


def test_with_token_replaces_a_callers_own_authorization(channel):
    assert model_info(with_token(channel, TOKEN),
                      metadata=[("authorization", "Bearer stale")]).dimension == 2


def test_no_token_configured_means_no_check():
    with running_server(None) as address, grpc.insecure_channel(address) as channel:
        assert model_info(channel).model_name == "tiny"
        assert with_token(channel, None) is channel


# -- configuration --------------------------------------------------------------------------------

def test_load_token_from_file_flag_env_file_or_env(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    assert load_token(token_file, env={}) == TOKEN
    assert load_token(None, env={"RECSYS_TOKEN_FILE": str(token_file)}) == TOKEN
    assert load_token(None, env={"RECSYS_TOKEN": TOKEN}) == TOKEN
    assert load_token(token_file, env={"RECSYS_TOKEN": "other"}) == TOKEN   # the flag wins
    assert load_token(None, env={}) is None
    assert load_token(None, env={"RECSYS_TOKEN": ""}) is None


@pytest.mark.parametrize("content, says", [("", "is empty"), ("  \n", "is empty"),
                                           ("two words", "printable ASCII"),
                                           ("tok\x01en", "printable ASCII")])
def test_unusable_token_files_are_named(tmp_path, content, says):
    token_file = tmp_path / "token"
    token_file.write_text(content)
    with pytest.raises(TokenError, match=f"{re.escape(str(token_file))} .*{says}"):
        load_token(token_file, env={})


def test_unreadable_token_file_is_named(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(TokenError, match=f"cannot read the token file {re.escape(str(missing))}"):
        load_token(missing, env={})
    (tmp_path / "latin1").write_bytes("tökén".encode("latin-1"))
    with pytest.raises(TokenError, match="latin1"):
        load_token(tmp_path / "latin1", env={})


@pytest.mark.parametrize("bad", ["", "with space", "ü"])
def test_the_interceptor_refuses_an_unusable_token(bad):
    with pytest.raises(TokenError):
        TokenAuthInterceptor(bad)
