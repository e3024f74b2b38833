"""One caller cannot take the embedder from the others (found by a resource-exhaustion audit,
against the real embedder): idle EmbedStream streams used to hold every gRPC worker, health
checks included (now at most --max-streams, each ended after --stream-idle-s of silence), and an
Embed cancelled while its texts were tokenized still tokenized and embedded all of them, holding
the tokenizer (now it stops within 64 texts and queues none)."""
from __future__ import annotations

import re
import threading
import time
import urllib.request

import grpc
import pytest

from client.generated.recsys.v1 import embedder_pb2 as pb, embedder_pb2_grpc
from tests.procs import health_status
from tests.test_index_support import start_embedder

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def texts_embedded(embedder) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{embedder.metrics_port}/metrics",
                                timeout=5) as reply:
        text = reply.read().decode()
    return float(re.search(r"^embedder_texts_total (\S+)$", text, re.M).group(1))


@pytest.fixture(scope="module")
def embedder():
    proc = start_embedder(extra=("--max-streams", "2", "--stream-idle-s", "3"))
    yield proc
    proc.terminate()


def test_streams_are_capped_and_idle_ones_end_while_others_are_served(embedder):
    channel = grpc.insecure_channel(embedder.address)
    stub = embedder_pb2_grpc.EmbedderStub(channel)
    never = threading.Event()

    def silent():  # a request iterator that sends nothing
        never.wait()
        yield from ()

    idle = [stub.EmbedStream(silent(), timeout=60) for _ in range(2)]
    try:
        time.sleep(0.5)
        with pytest.raises(grpc.RpcError) as third:
            list(stub.EmbedStream(iter([pb.EmbedRequest(texts=["a chair"])]), timeout=10))
        assert third.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--max-streams" in third.value.details()
        assert len(stub.Embed(pb.EmbedRequest(texts=["a chair"]), timeout=5).embeddings) == 1
        assert health_status(embedder.address) == "SERVING"
        for stream in idle:  # ended by the server after 3 s of silence
            with pytest.raises(grpc.RpcError) as ended:
                list(stream)
            assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "stream idle" in ended.value.details()
        answers = list(stub.EmbedStream(iter([pb.EmbedRequest(texts=["a lamp"])]), timeout=10))
        assert len(answers) == 1  # the slots are free again
    finally:
        never.set()
        channel.close()


def test_an_embed_cancelled_while_tokenizing_stops_and_embeds_nothing(embedder):
    channel = grpc.insecure_channel(embedder.address)
    stub = embedder_pb2_grpc.EmbedderStub(channel)
    try:
        big = pb.EmbedRequest(texts=[f"{i} " + "oak chair with a curved back " * 666
                                     for i in range(1024)])  # 1,024 texts of ~20,000 characters
        before = texts_embedded(embedder)
        call = stub.Embed.future(big)
        time.sleep(0.8)  # tokenizing these takes ~9 s on 2 cores
        call.cancel()
        started = time.monotonic()
        stub.Embed(pb.EmbedRequest(texts=["a small desk"]), timeout=5)  # gets the tokenizer
        assert time.monotonic() - started < 3.0
        time.sleep(12)  # before: tokenizing ended by now and the 1,024 texts were being embedded
        assert texts_embedded(embedder) - before == 1  # the small desk alone
    finally:
        channel.close()
