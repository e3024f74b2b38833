"""Embedder core without the model or a server: config, batch cutting, the batcher, validation."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from embedder_service.__main__ import openmp_environment
from embedder_service.backend import Tokenized, normalize_rows
from embedder_service.batcher import Batcher, cut_sorted
from embedder_service.config import EmbedderConfig
from embedder_service.validation import Limits, check_lengths, check_texts
from servekit.errors import InvalidArgument, ResourceExhausted

pytestmark = pytest.mark.timeout(60)


# ---- config -------------------------------------------------------------------------------------
def test_config_flag_beats_environment_beats_default():
    env = {"EMBEDDER_PORT": "6000", "EMBEDDER_MAX_BATCH_SIZE": "8", "EMBEDDER_HOST": "0.0.0.0"}
    config = EmbedderConfig.from_args(["--port", "7000"], environ=env)
    assert (config.port, config.max_batch_size, config.host) == (7000, 8, "0.0.0.0")
    assert EmbedderConfig.from_args([], environ={}).max_batch_size == EmbedderConfig().max_batch_size


@pytest.mark.parametrize("argv, env", [
    (["--max-batch-size", "0"], {}),
    ([], {"EMBEDDER_MAX_QUEUE_TEXTS": "many"}),
    (["--max-batch-wait-ms", "-1"], {}),
    (["--omp-spin-count", "-2"], {}),
    ([], {"EMBEDDER_OMP_WAIT_POLICY": "sometimes"}),
    (["--max-queue-texts", "100"], {}),  # under --max-texts-per-request: a request could never queue
])
def test_config_rejects_bad_values(argv, env, capsys):
    with pytest.raises(SystemExit):
        EmbedderConfig.from_args(argv, environ=env)
    assert "error" in capsys.readouterr().err


def test_a_queue_smaller_than_one_request_is_refused_saying_what_to_change(capsys):
    with pytest.raises(SystemExit):
        EmbedderConfig.from_args(["--max-queue-texts", "100", "--max-texts-per-request", "101"],
                                 environ={})
    assert "--max-texts-per-request (101) is more than --max-queue-texts (100)" in \
        capsys.readouterr().err
    assert EmbedderConfig.from_args(["--max-queue-texts", "100", "--max-texts-per-request", "100"],
                                    environ={}).max_queue_texts == 100


def test_openmp_environment_defaults_and_what_the_environment_already_says():
    env = {}
    openmp_environment(EmbedderConfig.from_args([], environ={}), env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000"}
    env = {"GOMP_SPINCOUNT": "300000"}  # set by the operator: kept
    openmp_environment(EmbedderConfig.from_args(["--omp-wait-policy", "active"], environ={}), env)
    assert env == {"GOMP_SPINCOUNT": "300000", "OMP_WAIT_POLICY": "ACTIVE"}
    env = {}  # -1 and an empty policy: OpenMP's own defaults
    openmp_environment(EmbedderConfig.from_args(["--omp-spin-count", "-1", "--omp-wait-policy", ""],
                                                environ={}), env)
    assert env == {}


# ---- batch cutting ------------------------------------------------------------------------------
def cost(lengths, runs, overhead):
    return sum(overhead + (b - a) * lengths[b - 1] for a, b in runs)


def test_cut_sorted_covers_everything_and_respects_limits():
    rng = np.random.default_rng(0)
    lengths = sorted(int(x) for x in rng.integers(5, 257, 200))
    runs = cut_sorted(lengths, max_size=16, max_tokens=2048, overhead=64)
    assert runs[0][0] == 0 and runs[-1][1] == len(lengths)
    assert all(a < b for a, b in runs) and all(r[1] == s[0] for r, s in zip(runs, runs[1:]))
    assert all(b - a <= 16 and (b - a) * lengths[b - 1] <= 2048 for a, b in runs)


def test_cut_sorted_is_optimal_against_brute_force():
    def brute(lengths, max_size, overhead):
        if not lengths:
            return 0
        return min(overhead + k * lengths[k - 1] + brute(lengths[k:], max_size, overhead)
                   for k in range(1, min(max_size, len(lengths)) + 1))
    rng = np.random.default_rng(1)
    for _ in range(30):
        lengths = sorted(int(x) for x in rng.integers(1, 100, int(rng.integers(1, 9))))
        runs = cut_sorted(lengths, max_size=4, max_tokens=10**9, overhead=20)
        assert cost(lengths, runs, 20) == brute(lengths, 4, 20)


def test_cut_sorted_mixed_lengths_are_split_equal_lengths_are_not():
    assert cut_sorted([10] * 8, 32, 10**6, 64) == [(0, 8)]
    assert cut_sorted([10] * 4 + [256] * 4, 32, 10**6, 64) == [(0, 4), (4, 8)]


def test_text_over_the_token_budget_gets_a_batch_of_its_own():
    assert cut_sorted([300, 300], 32, 256, 1) == [(0, 1), (1, 2)]


# ---- the batcher with a fake model --------------------------------------------------------------
class FakeBackend:
    """Vector i = [token length, first id]; records every batch; can be held to fill the queue."""
    dimension = 2

    def __init__(self):
        self.batches: list[list[int]] = []
        self.busy = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def encode(self, batch):
        self.busy.set()
        self.gate.wait(10)
        self.batches.append([t.length for t in batch])
        return np.array([[t.length, t.ids[0]] for t in batch], dtype=np.float32)


def tok(length: int, first: int = 0) -> Tokenized:
    return Tokenized([first] + [1] * (length - 1), None, length)


def make_batcher(backend, **kw):
    args = dict(max_batch_size=4, max_batch_tokens=10**6, max_batch_wait_ms=0, max_queue_texts=100)
    return Batcher(backend, **{**args, **kw})


def held_model(**kw):
    """A batcher whose model is busy (held) with a first one-text job; the queue is empty."""
    backend = FakeBackend()
    batcher = make_batcher(backend, **kw)
    backend.gate.clear()
    first = batcher.submit([tok(2)])
    assert backend.busy.wait(10)
    return backend, batcher, first


def test_batcher_returns_each_jobs_vectors_in_its_order():
    backend, batcher, _ = held_model()  # the jobs below queue up and share one window
    jobs = [batcher.submit([tok(5 + (i * 7 + j * 13) % 40, first=100 * i + j) for j in range(3)])
            for i in range(5)]
    backend.gate.set()
    for i, job in enumerate(jobs):
        assert job.wait(10) and job.error is None
        assert job.vectors[:, 1].tolist() == [100 * i + j for j in range(3)]
        assert job.vectors[:, 0].tolist() == [t.length for t in job.tokens]
    assert all(len(b) <= 4 and b == sorted(b) for b in backend.batches)
    batcher.stop()


def test_batcher_queue_full_is_resource_exhausted():
    backend, batcher, first = held_model(max_queue_texts=5)
    batcher.submit([tok(3)] * 5)              # queue now full
    with pytest.raises(ResourceExhausted, match="max_queue_texts=5"):
        batcher.submit([tok(3)])
    backend.gate.set()
    assert first.wait(10)
    batcher.stop()


def test_cancelled_job_wakes_its_waiter_and_is_skipped():
    backend, batcher, _ = held_model()
    job = batcher.submit([tok(9)] * 3)
    job.cancel()
    assert job.wait(0)
    backend.gate.set()
    batcher.stop()
    assert [9, 9, 9] not in backend.batches


def test_stop_fails_what_cannot_finish():
    backend, batcher, _ = held_model()
    job = batcher.submit([tok(4)])
    batcher.stop(timeout=0.2)
    assert job.wait(1) and job.error is not None
    backend.gate.set()


# ---- validation and normalization ---------------------------------------------------------------
LIMITS = Limits(max_texts_per_request=3, max_chars_per_text=10, max_seq_length=8)


@pytest.mark.parametrize("texts, match", [
    ([], "empty"), (["a", "b", "c", "d"], "max_texts_per_request=3"),
    (["ok", "x" * 11], r"texts\[1\].*max_chars_per_text=10"), (["ok", "\u3000 "], r"texts\[1\]"),
    (["\u200b\u200b"], r"texts\[0\].*invisible"), (["ok", "\x00"], r"texts\[1\]"),
    (["\ufeff\u200e \x1b"], r"texts\[0\]"),
])
def test_check_texts(texts, match):
    with pytest.raises(InvalidArgument, match=match):
        check_texts(texts, LIMITS)


@pytest.mark.parametrize("text", ["a", " \u200bx", "日本", "\u00e9", "🙂", "5"])
def test_texts_with_any_visible_character_pass(text):
    assert check_texts([text], LIMITS) == [text]


def test_check_lengths_names_position_and_count():
    with pytest.raises(InvalidArgument, match=r"texts\[1\] has 12 tokens.*max_seq_length=8"):
        check_lengths([Tokenized([1] * 5, None, 5), Tokenized([1] * 8, None, 12)], LIMITS)


def test_normalize_rows_unit_length_and_zero_safe():
    out = normalize_rows(np.array([[3, 4], [0, 0]], dtype=np.float32))
    assert np.allclose(out, [[0.6, 0.8], [0, 0]]) and out.dtype == np.float32
