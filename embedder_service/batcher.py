"""Dynamic batching: texts of concurrent requests share forward passes on one model thread.

Request threads tokenize their texts and `submit()` them as one Job; the bounded queue holds
texts, not requests. When the model is free it takes what is queued at once, unless calls are
still arriving (being parsed and tokenized): then it waits for them, at most max_batch_wait_ms.
It takes a window of queued texts in arrival order, sorts it by token length and cuts it into
batches (at most max_batch_size texts and max_batch_tokens padded tokens each) so that padded
tokens plus a fixed cost per forward pass are least: texts of like length share a batch and little
compute goes to padding. Each Job's vectors land in its own array; the Job completes when its last
text is encoded.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from contextlib import contextmanager

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from servekit.errors import ResourceExhausted, Unavailable

from .backend import Tokenized

log = logging.getLogger(__name__)

QUEUE_TEXTS = Gauge("embedder_queue_texts", "Texts waiting in the batching queue")
BATCH_SIZE = Histogram("embedder_batch_size", "Texts per forward pass",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
BATCH_SECONDS = Histogram("embedder_batch_seconds", "Duration of one forward pass",
                          buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
TEXTS = Counter("embedder_texts_total", "Texts embedded")
TOKENS = Counter("embedder_tokens_total", "Tokens embedded (after truncation, special tokens included)")
PADDING = Counter("embedder_padding_tokens_total", "Pad tokens computed because batch members differ in length")

# How many batches' worth of queued texts one window may take and sort together.
WINDOW_BATCHES = 8


def cut_sorted(lengths: list[int], max_size: int, max_tokens: int, overhead: int) -> list[tuple[int, int]]:
    """Cut ascending `lengths` into [start, end) runs minimizing sum(overhead + size * longest):
    dynamic programming, O(len * max_size). A run over max_tokens holds one text only."""
    n = len(lengths)
    best = [0] + [0] * n
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        longest = lengths[end - 1]
        best[end], cut[end] = best[end - 1] + overhead + longest, end - 1
        for start in range(end - 2, max(-1, end - 1 - max_size), -1):
            size = end - start
            if size * longest > max_tokens:
                break
            cost = best[start] + overhead + size * longest
            if cost < best[end]:
                best[end], cut[end] = cost, start
    runs = []
    end = n
    while end > 0:
        runs.append((cut[end], end))
        end = cut[end]
    return runs[::-1]


class Job:
    """One request's texts on their way through the model."""

    def __init__(self, tokens: list[Tokenized], dimension: int):
        self.tokens = tokens
        self.vectors = np.empty((len(tokens), dimension), dtype=np.float32)
        self.remaining = len(tokens)
        self.enqueued = time.perf_counter()
        self.started: float | None = None  # when the model first took one of its texts
        self.inference_s = 0.0
        self.error: BaseException | None = None
        self.cancelled = False
        self._done = threading.Event()

    def wait(self, timeout: float | None) -> bool:
        """True once every vector is in (or the job failed); False when `timeout` passed first."""
        return self._done.wait(timeout)

    def cancel(self) -> None:
        """The caller went away (or gave up): its texts still queued are skipped, waiters wake."""
        self.cancelled = True
        self._done.set()

    @property
    def queue_us(self) -> int:
        return int(((self.started or self.enqueued) - self.enqueued) * 1e6)

    @property
    def inference_us(self) -> int:
        return int(self.inference_s * 1e6)

    def _fail(self, error: BaseException) -> None:
        self.error = error
        self._done.set()


class Batcher:
    """The queue and the model thread. `backend` needs `.encode(list[Tokenized]) -> ndarray`."""

    def __init__(self, backend, *, max_batch_size: int, max_batch_tokens: int,
                 max_batch_wait_ms: float, max_queue_texts: int, batch_overhead_tokens: int = 64):
        self._backend = backend
        self._dimension = backend.dimension
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_batch_wait_ms / 1000.0
        self.max_queue_texts = max_queue_texts
        self.batch_overhead_tokens = batch_overhead_tokens
        self._pending: deque[tuple[Job, int]] = deque()
        self._arriving = 0  # calls between arrival and submit(): worth a short wait
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="model", daemon=True)
        self._thread.start()

    # ---- request side -------------------------------------------------------------------------
    @contextmanager
    def arriving(self):
        """Wrap a call's parsing and tokenizing: while any call is inside, an idle model waits
        (at most max_batch_wait_ms) for its texts, so that concurrent calls share a batch."""
        with self._cond:
            self._arriving += 1
        try:
            yield
        finally:
            with self._cond:
                self._arriving -= 1
                self._cond.notify()

    def check_room(self, texts: int) -> None:
        """ResourceExhausted when `texts` more would not fit the queue now: a call checks before
        it tokenizes (submit checks again, under the lock), so a refused call costs nothing."""
        queued = len(self._pending)
        if queued + texts > self.max_queue_texts:
            raise ResourceExhausted(
                f"queue full: {queued} texts are waiting and this call adds {texts}, "
                f"over the server's max_queue_texts={self.max_queue_texts}; retry with backoff")

    def submit(self, tokens: list[Tokenized]) -> Job:
        job = Job(tokens, self._dimension)
        with self._cond:
            if self._stopping:
                raise Unavailable("the embedder is shutting down")
            self.check_room(len(tokens))
            self._pending.extend((job, i) for i in range(len(tokens)))
            QUEUE_TEXTS.set(len(self._pending))
            self._cond.notify()
        return job

    def queued_texts(self) -> int:
        return len(self._pending)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued (for up to `timeout` s), then end the model thread; jobs still
        queued after that fail with UNAVAILABLE."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)
        with self._cond:
            left = {id(job): job for job, _ in self._pending}
            self._pending.clear()
        for job in left.values():
            job._fail(Unavailable("the embedder stopped before this call's texts were embedded"))

    # ---- model side ---------------------------------------------------------------------------
    def _take_window(self) -> list[tuple[Job, int]] | None:
        """Block for queued texts; None when stopping with nothing queued."""
        with self._cond:
            while not self._pending:
                if self._stopping:
                    return None
                self._cond.wait()
            if self._arriving and len(self._pending) < self.max_batch_size and self.max_wait_s > 0:
                deadline = time.monotonic() + self.max_wait_s
                while (self._arriving and len(self._pending) < self.max_batch_size
                       and not self._stopping):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            window = []
            limit = self.max_batch_size * WINDOW_BATCHES
            while self._pending and len(window) < limit:
                job, i = self._pending.popleft()
                if not job.cancelled:
                    window.append((job, i))
            QUEUE_TEXTS.set(len(self._pending))
            return window

    def _batches(self, window: list[tuple[Job, int]]) -> list[list[tuple[Job, int]]]:
        """The window sorted by token length and cut into batches so that padded tokens plus a
        fixed cost per forward pass (batch_overhead_tokens) are least; each batch holds at most
        max_batch_size texts and max_batch_tokens padded tokens."""
        window.sort(key=lambda item: item[0].tokens[item[1]].length)
        lengths = [job.tokens[i].length for job, i in window]
        return [window[a:b] for a, b in cut_sorted(lengths, self.max_batch_size, self.max_batch_tokens,
                                                   self.batch_overhead_tokens)]

    def _run(self) -> None:
        while True:
            window = self._take_window()
            if window is None:
                return
            for batch in self._batches(window):
                self._encode(batch)

    def _encode(self, batch: list[tuple[Job, int]]) -> None:
        start = time.perf_counter()
        for job, _ in batch:
            if job.started is None:
                job.started = start
        tokens = [job.tokens[i] for job, i in batch]
        try:
            vectors = self._backend.encode(tokens)
        except Exception as exc:  # noqa: BLE001 - one bad batch must not end the model thread
            log.exception("forward pass of %d texts failed", len(batch))
            for job, _ in batch:
                job._fail(exc)
            return
        took = time.perf_counter() - start
        lengths = [t.length for t in tokens]
        BATCH_SIZE.observe(len(batch))
        BATCH_SECONDS.observe(took)
        TEXTS.inc(len(batch))
        TOKENS.inc(sum(lengths))
        PADDING.inc(len(lengths) * max(lengths) - sum(lengths))
        seen = set()
        for row, (job, i) in enumerate(batch):
            job.vectors[i] = vectors[row]
            if id(job) not in seen:
                seen.add(id(job))
                job.inference_s += took
            job.remaining -= 1
            if job.remaining == 0:
                job._done.set()
