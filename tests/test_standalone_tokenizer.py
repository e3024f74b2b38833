"""A start of the OpenVINO backend from its cache: the model's tokenizer without transformers.

The first start (sentence-transformers loaded, the model converted) leaves tokenizer.json and
serving.json in the cache entry; a later start loads neither torch nor sentence-transformers and
must give the very same tokens and vectors.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading

import numpy as np
import pytest

from embedder_service import standalone_tokenizer
from embedder_service.standalone_tokenizer import PROBES, StandaloneTokenizer
from tests.procs import IKARUS_CSV, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# Builds the backend from the cache dir argv[1] and prints what the start loaded, its tokens and
# its vectors of PROBES, as JSON on the last line.
START = """
import json, sys
from embedder_service.openvino_backend import OpenVINOBackend
from embedder_service.standalone_tokenizer import PROBES
backend = OpenVINOBackend(precision="fp32", cache_dir=sys.argv[1])
tokens = backend.tokenize(list(PROBES))
vectors = backend.encode(tokens)
print(json.dumps({"torch": "torch" in sys.modules, "st": "sentence_transformers" in sys.modules,
                  "full": backend.full is not None, "dimension": backend.dimension,
                  "max_seq_length": backend.max_seq_length,
                  "tokens": [[t.ids, t.type_ids, t.full_length] for t in tokens],
                  "vectors": vectors.tolist()}))
"""


def start(cache_dir) -> dict:
    done = subprocess.run([sys.executable, "-c", START, str(cache_dir)], cwd=ROOT, capture_output=True,
                          text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def torch_backend():
    from embedder_service.backend import SentenceTransformerBackend
    return SentenceTransformerBackend()


def catalog_texts() -> list[str]:
    if not IKARUS_CSV.exists():
        return []
    from bench.embedder import catalog_texts as texts
    return texts()


def test_a_start_from_the_cache_loads_neither_torch_nor_sentence_transformers(tmp_path):
    first = start(tmp_path)
    assert first["torch"] and first["st"] and first["full"]  # converted: the model was loaded
    entry, = tmp_path.iterdir()
    assert {p.name for p in entry.iterdir()} >= {"model.xml", "tokenizer.json", "serving.json"}
    second = start(tmp_path)
    assert not second["torch"] and not second["st"] and not second["full"]
    assert (second["dimension"], second["max_seq_length"]) == (first["dimension"], first["max_seq_length"]) == (384, 256)
    assert second["tokens"] == first["tokens"]
    long = second["tokens"][PROBES.index("word " * 300)]
    assert long[2] == 302 and len(long[0]) == 256  # cut to max_seq_length, counted whole
    assert np.array_equal(np.array(second["vectors"]), np.array(first["vectors"]))


def test_an_entry_without_its_tokenizer_gets_it_at_the_next_full_start(tmp_path, torch_backend):
    """In this process (torch already loaded by the fixture, so a full start costs only the model
    load): `full` says which way each start went."""
    from embedder_service.openvino_backend import OpenVINOBackend

    def start_here():
        return OpenVINOBackend(precision="fp32", cache_dir=str(tmp_path)).full is not None

    assert start_here()  # converted
    entry, = tmp_path.iterdir()
    (entry / "serving.json").unlink()
    assert start_here()  # no standalone tokenizer: the full way, and it is written back
    assert (entry / "serving.json").is_file()
    (entry / "tokenizer.json").write_text("{not json")
    assert start_here()  # damaged: the full way again, never a wrong tokenizer
    assert not start_here()  # repaired by that start


def test_the_standalone_tokenizer_tokenizes_as_the_transformers_call(torch_backend):
    texts = list(PROBES) + catalog_texts() + ["x " * 2000, " ".join(["naïve"] * 400), "\u00a0\u2003 spaces"]
    standalone = StandaloneTokenizer(*standalone_tokenizer.from_torch_backend(torch_backend))
    assert standalone.tokenize(texts) == torch_backend.tokenize(texts)
    assert standalone_tokenizer.reproduces(standalone, torch_backend)


def test_a_tokenizer_that_cuts_elsewhere_is_not_kept(torch_backend):
    tokenizer_json, facts = standalone_tokenizer.from_torch_backend(torch_backend)
    for wrong in (dataclasses.replace(facts, max_seq_length=128),
                  dataclasses.replace(facts, truncation_side="left"),
                  dataclasses.replace(facts, uses_type_ids=False)):
        assert not standalone_tokenizer.reproduces(StandaloneTokenizer(tokenizer_json, wrong), torch_backend)


def test_threads_tokenizing_at_once_get_their_own_truncation(torch_backend):
    """The transformers wrapper sets truncation on its shared tokenizer at each call (the torch
    backend locks around it); the standalone one never changes its settings, so needs no lock."""
    standalone = StandaloneTokenizer(*standalone_tokenizer.from_torch_backend(torch_backend))
    texts = [("long " * 400) if i % 3 == 0 else f"short text {i}" for i in range(60)]
    want = torch_backend.tokenize(texts)
    wrong = []

    def worker() -> None:
        for _ in range(20):
            if standalone.tokenize(texts) != want:
                wrong.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_load_refuses_an_entry_without_its_model_or_with_a_damaged_file(tmp_path, torch_backend):
    tokenizer_json, facts = standalone_tokenizer.from_torch_backend(torch_backend)
    standalone_tokenizer.save(tmp_path, tokenizer_json, facts)
    assert standalone_tokenizer.load(tmp_path) is None  # no model.xml beside it
    (tmp_path / "model.xml").write_text("<net/>")
    assert standalone_tokenizer.load(tmp_path).facts == facts
    (tmp_path / "serving.json").write_text(json.dumps({"dimension": 384}))
    assert standalone_tokenizer.load(tmp_path) is None
    assert standalone_tokenizer.load(None) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.xml", "serving.json", "tokenizer.json"]


def test_prepare_cache_fills_the_cache_for_a_start_without_torch(tmp_path):
    command = [sys.executable, "-m", "embedder_service.prepare_cache", "--cache-dir", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    entry, = tmp_path.iterdir()
    assert done.stdout.strip() == f"prepared {entry}: the converted model and its tokenizer (a start loads no torch)"
    assert not start(tmp_path)["full"]
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0 and "tokenizer from the cache: torch not loaded" in again.stderr
