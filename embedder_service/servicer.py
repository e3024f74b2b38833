"""gRPC transport: recsys.v1.Embedder's RPCs over the batcher. No model code here."""
from __future__ import annotations

import queue
import threading
import time

from client.generated.recsys.v1 import embedder_pb2, embedder_pb2_grpc
from servekit.deadlines import remaining_s
from servekit.errors import (Cancelled, DeadlineExceeded, ResourceExhausted, ServiceError,
                             Unavailable)

from .backend import normalize_rows
from .batcher import Batcher
from .config import EmbedderConfig
from .validation import Limits, check_lengths, check_texts

# EmbedStream: how many requests of one stream may be queued in the model at once (pipelining).
STREAM_READ_AHEAD = 4
# A request's texts are tokenized this many at a time (see _submit).
TOKENIZE_CHUNK = 64


class _Ready:
    """What exists once the model is loaded."""

    def __init__(self, backend, batcher: Batcher, limits: Limits, info: embedder_pb2.ModelInfo):
        self.backend, self.batcher, self.limits, self.info = backend, batcher, limits, info


class EmbedderServicer(embedder_pb2_grpc.EmbedderServicer):
    def __init__(self, config: EmbedderConfig):
        self._config = config
        self._ready: _Ready | None = None
        self._streams = threading.BoundedSemaphore(config.max_streams)

    def attach(self, backend, batcher: Batcher) -> None:
        """The model is loaded: start answering (until then calls get UNAVAILABLE)."""
        c = self._config
        limits = Limits(c.max_texts_per_request, c.max_chars_per_text, backend.max_seq_length)
        info = embedder_pb2.ModelInfo(
            model_name=backend.model_name, dimension=backend.dimension,
            max_seq_length=backend.max_seq_length, normalized=True,
            max_texts_per_request=c.max_texts_per_request, max_chars_per_text=c.max_chars_per_text,
            max_queue_texts=c.max_queue_texts, max_batch_size=c.max_batch_size,
            max_batch_wait_ms=c.max_batch_wait_ms, max_message_bytes=c.max_message_bytes,
            backend=backend.backend_name, precision=backend.precision)
        self._ready = _Ready(backend, batcher, limits, info)

    def _get_ready(self) -> _Ready:
        ready = self._ready
        if ready is None:
            raise Unavailable("the model is still loading: retry when health says SERVING")
        return ready

    # ---- RPCs ---------------------------------------------------------------------------------
    def GetModelInfo(self, request, context):
        return self._get_ready().info

    def Embed(self, request, context):
        arrived = time.perf_counter()
        ready = self._get_ready()
        job = self._submit(ready, request, context)
        if not context.add_callback(job.cancel):  # the call ended while its texts were read
            job.cancel()
            raise Cancelled("the call was cancelled")
        return self._answer(ready, request, job, context, arrived)

    def EmbedStream(self, request_iterator, context):
        """Reads ahead up to STREAM_READ_AHEAD requests so the model stays busy; answers in order.
        At most --max-streams at once (each holds a worker); one idle for --stream-idle-s ends."""
        ready = self._get_ready()
        if not self._streams.acquire(blocking=False):
            raise ResourceExhausted(
                f"{self._config.max_streams} EmbedStream streams are open, the server's "
                "--max-streams: close idle streams, or send Embed calls")
        try:
            yield from self._stream(ready, request_iterator, context)
        finally:
            self._streams.release()

    def _stream(self, ready: _Ready, request_iterator, context):
        pending: queue.Queue = queue.Queue(maxsize=STREAM_READ_AHEAD)
        stop = threading.Event()
        context.add_callback(stop.set)
        idle_s = self._config.stream_idle_s or None

        def read() -> None:
            try:
                for number, request in enumerate(request_iterator):
                    if stop.is_set():
                        return
                    arrived = time.perf_counter()
                    try:
                        item = (request, self._submit(ready, request, context), arrived)
                    except ServiceError as exc:
                        pending.put(_in_stream(exc, number, request.request_id))
                        return
                    pending.put(item)
            except Exception as exc:  # noqa: BLE001 - the stream broke: end it after earlier answers
                if not stop.is_set():  # a request that does not parse: InvalidArgument
                    pending.put(exc if isinstance(exc, ServiceError)
                                else Unavailable(f"request stream failed: {exc}"))
                return
            finally:
                pending.put(None)

        threading.Thread(target=read, name="embed-stream-reader", daemon=True).start()
        try:
            while True:
                try:
                    item = pending.get(timeout=idle_s)
                except queue.Empty:
                    raise DeadlineExceeded(
                        f"stream idle: nothing sent for {idle_s:g} s (the server's "
                        "--stream-idle-s); open a stream when there is something to embed") from None
                if item is None:
                    return
                if isinstance(item, ServiceError):
                    raise item
                request, job, arrived = item
                yield self._answer(ready, request, job, context, arrived)
        finally:
            stop.set()
            while True:  # let a blocked reader finish and drop what it queued
                try:
                    item = pending.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, tuple):
                    item[1].cancel()

    # ---- shared steps -------------------------------------------------------------------------
    @staticmethod
    def _submit(ready: _Ready, request, context):
        """Check, tokenize (TOKENIZE_CHUNK texts at a time: other calls' texts get the tokenizer
        in between, and a call cancelled meanwhile stops there) and queue the request's texts.
        A queue without room refuses the call before any tokenizing."""
        with ready.batcher.arriving():
            texts = check_texts(request.texts, ready.limits)
            ready.batcher.check_room(len(texts))
            tokens = []
            for start in range(0, len(texts), TOKENIZE_CHUNK):
                if not context.is_active():
                    raise Cancelled("the call was cancelled")
                tokens += ready.backend.tokenize(texts[start:start + TOKENIZE_CHUNK])
            if request.HasField("truncate") and not request.truncate:
                check_lengths(tokens, ready.limits)
            return ready.batcher.submit(tokens)

    @staticmethod
    def _answer(ready: _Ready, request, job, context, arrived: float) -> embedder_pb2.EmbedResponse:
        if not job.wait(remaining_s(context)):
            job.cancel()
            raise DeadlineExceeded(
                f"the call's deadline passed with {job.remaining} of its {len(job.tokens)} texts "
                f"not yet embedded ({ready.batcher.queued_texts()} texts queued): allow more time")
        if job.error is not None:
            raise job.error
        if job.cancelled:
            raise Cancelled("the call was cancelled")
        normalize = request.normalize if request.HasField("normalize") else True
        vectors = normalize_rows(job.vectors) if normalize else job.vectors
        embeddings = [embedder_pb2.Embedding(values=v, token_count=t.length, truncated=t.truncated)
                      for v, t in zip(vectors.tolist(), job.tokens)]
        return embedder_pb2.EmbedResponse(
            embeddings=embeddings, model_name=ready.backend.model_name,
            total_tokens=sum(t.length for t in job.tokens), request_id=request.request_id,
            timing=embedder_pb2.Timing(queue_us=job.queue_us, inference_us=job.inference_us,
                                       total_us=int((time.perf_counter() - arrived) * 1e6)))


def _in_stream(exc: ServiceError, number: int, request_id: str) -> ServiceError:
    """The error of one stream message, saying which: the stream ends there, so the caller must
    know which of its requests was refused (and that the earlier ones were answered)."""
    which = f"stream message {number}" + (f" (request_id {request_id!r})" if request_id else "")
    return type(exc)(f"{which}: {exc.message} (the {number} before it were answered)")
