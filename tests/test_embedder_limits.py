"""Every bad input and every overload gets its status, and the server stays healthy after each.

One server with small limits, so that each limit is cheap to reach.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from client.generated.recsys.v1 import embedder_pb2 as pb
from client.generated.recsys.v1 import embedder_pb2_grpc
from tests.procs import ServiceProcess, free_port, health_status

pytestmark = pytest.mark.slow

MAX_TEXTS, MAX_CHARS, MAX_QUEUE, MAX_MESSAGE = 8, 2000, 8, 256 * 1024
LONG_TEXT = " ".join(["a sturdy solid wood dining table with four matching chairs"] * 30)[:MAX_CHARS]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    proc = ServiceProcess("embedder_service", ["--port", str(port)], port, env={
        "EMBEDDER_MAX_TEXTS_PER_REQUEST": str(MAX_TEXTS), "EMBEDDER_MAX_CHARS_PER_TEXT": str(MAX_CHARS),
        "EMBEDDER_MAX_QUEUE_TEXTS": str(MAX_QUEUE), "EMBEDDER_MAX_MESSAGE_BYTES": str(MAX_MESSAGE),
        "EMBEDDER_MAX_BATCH_SIZE": "4"})
    with proc.serving_until_clean_exit():
        yield proc


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.address) as channel:
        yield embedder_pb2_grpc.EmbedderStub(channel)


def status_of(call) -> tuple[grpc.StatusCode, str]:
    try:
        call()
    except grpc.RpcError as err:
        return err.code(), err.details()
    return grpc.StatusCode.OK, ""


def test_limits_come_from_the_environment(stub):
    info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
    assert (info.max_texts_per_request, info.max_chars_per_text, info.max_queue_texts,
            info.max_message_bytes, info.max_batch_size) == (MAX_TEXTS, MAX_CHARS, MAX_QUEUE, MAX_MESSAGE, 4)


@pytest.mark.parametrize("texts, must_name", [
    ([], ["empty", str(MAX_TEXTS)]),
    (["fine", ""], ["texts[1]", "empty"]),
    (["fine", "fine", " \t\n "], ["texts[2]", "whitespace"]),
    (["x"] * (MAX_TEXTS + 1), [str(MAX_TEXTS + 1), f"max_texts_per_request={MAX_TEXTS}"]),
    (["fine", "y" * (MAX_CHARS + 1)], ["texts[1]", str(MAX_CHARS + 1), f"max_chars_per_text={MAX_CHARS}"]),
], ids=["no-texts", "empty-text", "blank-text", "too-many-texts", "too-many-chars"])
def test_bad_input_is_invalid_argument_naming_limit_and_position(server, stub, texts, must_name):
    code, details = status_of(lambda: stub.Embed(pb.EmbedRequest(texts=texts), timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    for part in must_name:
        assert part in details, (part, details)
    assert health_status(server.address) == "SERVING"


def test_too_many_tokens_with_truncate_false(server, stub):
    code, details = status_of(lambda: stub.Embed(
        pb.EmbedRequest(texts=["fine", LONG_TEXT], truncate=False), timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "texts[1]" in details and "max_seq_length=256" in details and "tokens" in details
    assert health_status(server.address) == "SERVING"


def test_message_over_the_size_limit_is_resource_exhausted(server, stub):
    # The text limits keep texts under MAX_MESSAGE here, so a long request_id makes the message big.
    request = pb.EmbedRequest(texts=["fine"], request_id="r" * (MAX_MESSAGE + 1))
    code, details = status_of(lambda: stub.Embed(request, timeout=30))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
    assert health_status(server.address) == "SERVING"


def test_a_queue_smaller_than_one_request_is_refused_at_start(server):
    """Such a request would be RESOURCE_EXHAUSTED whatever the load, and retrying (what that
    status asks for) could never help: the server refuses the settings instead."""
    port = free_port()
    small = ServiceProcess("embedder_service", ["--port", str(port), "--max-queue-texts", "2"], port)
    assert small.proc.wait(timeout=120) == 2
    assert "--max-texts-per-request (1024) is more than --max-queue-texts (2)" in small.output()


@pytest.mark.timeout(300)
def test_full_queue_is_resource_exhausted_and_the_rest_succeed(server, stub):
    """Many concurrent calls of long texts: the model is busy, the queue fills, extra calls get
    RESOURCE_EXHAUSTED at once, accepted calls complete."""
    request = pb.EmbedRequest(texts=[LONG_TEXT] * 4)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: status_of(lambda: stub.Embed(request, timeout=120)), range(16)))
    codes = [code for code, _ in results]
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert grpc.StatusCode.OK in codes
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    exhausted = [details for code, details in results if code == grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert f"max_queue_texts={MAX_QUEUE}" in exhausted[0]
    assert health_status(server.address) == "SERVING"
    assert len(stub.Embed(pb.EmbedRequest(texts=["after the storm"]), timeout=60).embeddings) == 1


def test_deadline_exceeded_while_queued(server, stub):
    code, _ = status_of(lambda: stub.Embed(pb.EmbedRequest(texts=[LONG_TEXT] * 8), timeout=0.001))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert health_status(server.address) == "SERVING"
