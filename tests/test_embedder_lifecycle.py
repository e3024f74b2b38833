"""Start-up and shutdown: NOT_SERVING (and UNAVAILABLE) while the model loads, then SERVING;
SIGTERM drains an in-flight call, which completes, and the process exits 0."""
from __future__ import annotations

import time

import grpc
import pytest

from client.generated.recsys.v1 import embedder_pb2 as pb
from client.generated.recsys.v1 import embedder_pb2_grpc
from tests.procs import ServiceProcess, free_port, health_status

pytestmark = pytest.mark.slow

LONG_TEXT = " ".join(["a sturdy solid wood dining table with four matching chairs"] * 30)


@pytest.mark.timeout(300)
def test_not_serving_while_loading_then_serving_then_sigterm_drains():
    port = free_port()
    proc = ServiceProcess("embedder_service", ["--port", str(port), "--grace-s", "120"], port)
    try:
        seen: list[str] = []
        early_embed = None
        deadline = time.monotonic() + 180
        with grpc.insecure_channel(proc.address) as channel:
            stub = embedder_pb2_grpc.EmbedderStub(channel)
            while time.monotonic() < deadline and proc.proc.poll() is None:
                status = health_status(proc.address)
                if status and (not seen or seen[-1] != status):
                    seen.append(status)
                if status == "NOT_SERVING" and early_embed is None:
                    try:
                        stub.Embed(pb.EmbedRequest(texts=["too early"]), timeout=10)
                        early_embed = grpc.StatusCode.OK
                    except grpc.RpcError as err:
                        early_embed = err.code()
                if status == "SERVING":
                    break
                time.sleep(0.02)
            assert seen == ["NOT_SERVING", "SERVING"], (seen, proc.output())
            assert early_embed == grpc.StatusCode.UNAVAILABLE
            assert "serving sentence-transformers/all-MiniLM-L6-v2" in proc.output()

            # A call that takes a while (256 long texts: seconds even for bf16 OpenVINO), in
            # flight when SIGTERM arrives.
            future = stub.Embed.future(pb.EmbedRequest(texts=[LONG_TEXT] * 256), timeout=240)
            time.sleep(0.5)
            assert not future.done(), "the call must still be in flight for this test to mean anything"
            proc.proc.terminate()
            reply = future.result()
            assert len(reply.embeddings) == 256 and len(reply.embeddings[0].values) == 384
        assert proc.proc.wait(120) == 0, proc.output()
        assert "draining" in proc.output()
    finally:
        proc.kill()
