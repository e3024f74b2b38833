"""The OpenVINO backend: the model's transformer compiled by OpenVINO for this CPU.

Only the forward pass of the transformer changes hands. Tokenization, truncation and padding are
the torch backend's, and the modules after the transformer (pooling, no Normalize) run in torch on
OpenVINO's token embeddings, so the vectors are the model's own recipe (a plain mean Pooling, as
all-MiniLM-L6-v2 has, runs in numpy with torch's arithmetic: 0.1 ms against torch's 0.4 ms for one
query, measured here): OpenVINO fp32 matches torch fp32 to ~2e-7, bf16 to cosine >= 0.9999
(tests/test_embedder_quality.py).

At start the packaged model is converted offline with `openvino.convert_model` (its transformer
module, traced with an example batch; dynamic batch and sequence length), or read from the cache
(embedder_service/ov_cache.py), then compiled for the CPU with the chosen precision as
INFERENCE_PRECISION_HINT. The first start (sentence-transformers loaded) also leaves the model's
tokenizer in the cache entry (embedder_service/standalone_tokenizer.py): later starts then load
neither torch nor sentence-transformers (1.3 s to SERVING instead of 11.4 s on 2 cores,
bench/embedder_start.py). OpenVINO's own default on a bf16-capable CPU is already bf16, so fp32
is always set explicitly. One compiled model and one infer request, used only by the batcher's
model thread (an infer request is not thread-safe).
"""
from __future__ import annotations

import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from . import ov_cache, standalone_tokenizer
from .backend import SentenceTransformerBackend, Tokenized, model_directory, model_name, pad

log = logging.getLogger(__name__)

OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


def import_openvino():
    """`openvino`, with its conversion tools' telemetry blocked: the embedder makes no outbound
    call (convert_model would otherwise try to send usage data). ovc falls back to its own stub
    when `openvino_telemetry` cannot be imported, which a None in sys.modules ensures."""
    sys.modules.setdefault("openvino_telemetry", None)
    try:
        import openvino
    except ImportError as exc:
        raise SystemExit(f"--backend openvino: the openvino package is missing ({exc}); install "
                         "requirements.txt, or use --backend torch") from None
    return openvino


def bf16_capable(openvino) -> bool:
    """Whether OpenVINO's CPU plugin lists BF16 among its optimization capabilities here."""
    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVINOBackend:
    """The embedder's backend interface (model_name, backend_name, precision, dimension,
    max_seq_length, tokenize, encode) over an OpenVINO compiled model. `full` is the torch backend
    (sentence-transformers loaded) where this start needs it: to convert the model, or because the
    cache entry has no standalone tokenizer; None after a start from the cache alone."""
    backend_name = "openvino"

    def __init__(self, model_path: str = "", torch_threads: int = 0, precision: str = "fp32",
                 cache_dir: str = "", threads: int = 0):
        self.precision = precision
        self.model_path = model_directory(model_path)
        self.model_name = model_name(model_path)
        self._torch_threads = torch_threads
        self.full: SentenceTransformerBackend | None = None
        ov = import_openvino()
        started = time.perf_counter()
        cache = ov_cache.resolve_cache_dir(cache_dir)
        key = ov_cache.cache_key(self.model_path, ov.__version__)
        entry = self.cache_entry = None if cache is None else cache / key
        self._standalone = standalone_tokenizer.load(entry)
        model, how = ov_cache.load_or_convert(
            cache, key, read=ov.Core().read_model, convert=self._convert,
            save=lambda m, xml: ov.save_model(m, str(xml), compress_to_fp16=False))
        if self._standalone is None:
            self._keep_standalone_tokenizer(entry)
        self._facts = (self._standalone.facts if self.full is None
                       else standalone_tokenizer.facts_of(self.full))
        self.dimension, self.max_seq_length = self._facts.dimension, self._facts.max_seq_length
        loaded = time.perf_counter()
        settings = {"INFERENCE_PRECISION_HINT": OV_PRECISION[precision], "PERFORMANCE_HINT": "LATENCY"}
        if threads > 0:
            settings["INFERENCE_NUM_THREADS"] = threads
        compiled = ov.Core().compile_model(model, "CPU", settings)
        self._request = compiled.create_infer_request()
        self._inputs = {port.get_any_name() for port in compiled.inputs}
        self._numpy_pooling = self._standalone is not None or plain_mean_pooling(self.full.modules[1:])
        log.info("openvino %s: model %s in %.1f s (%s), compiled for CPU (%s) in %.1f s", ov.__version__,
                 how, loaded - started, "tokenizer from the cache: torch not loaded" if self.full is None
                 else "tokenizer from sentence-transformers", OV_PRECISION[precision],
                 time.perf_counter() - loaded)

    def _full_backend(self) -> SentenceTransformerBackend:
        if self.full is None:
            self.full = SentenceTransformerBackend(self.model_path, self._torch_threads)
        return self.full

    def _keep_standalone_tokenizer(self, entry: Path | None) -> None:
        """A start that loaded sentence-transformers leaves the tokenizer and serving facts in the
        cache entry, where they reproduce the model's own (standalone_tokenizer), so that the next
        start needs neither torch nor sentence-transformers."""
        full = self._full_backend()
        if entry is None or not (entry / ov_cache.MODEL_XML).is_file() \
                or not plain_mean_pooling(full.modules[1:]):
            return
        tokenizer_json, facts = standalone_tokenizer.from_torch_backend(full)
        candidate = standalone_tokenizer.StandaloneTokenizer(tokenizer_json, facts)
        if not standalone_tokenizer.reproduces(candidate, full):
            log.info("the model's tokenizer does not work without transformers: every start loads it")
            return
        try:
            standalone_tokenizer.save(entry, tokenizer_json, facts)
        except OSError as exc:
            log.warning("cannot write the tokenizer into the model cache %s (%s)", entry, exc)

    def tokenize(self, texts: list[str]) -> list[Tokenized]:
        """As the torch backend tokenizes (truncate to max_seq_length); thread-safe. The loaded
        model's own tokenizer where this start loaded it, else the standalone one."""
        return (self.full or self._standalone).tokenize(texts)

    def padded(self, batch: list[Tokenized]) -> dict[str, np.ndarray]:
        return pad(batch, self._facts.pad_id, self._facts.uses_type_ids)

    def _convert(self):
        """The transformer as an OpenVINO model: inputs as the tokenizer gives them (batch and
        sequence length dynamic), output the last hidden state (token embeddings)."""
        import torch

        full = self._full_backend()
        transformer = full.modules[0]
        auto_model = getattr(transformer, "auto_model", None)
        if auto_model is None:
            raise SystemExit(f"--backend openvino: the model's first module ({type(transformer).__name__}) "
                             "is not a transformers model; use --backend torch")

        class LastHiddenState(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask, token_type_ids=None):
                extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
                return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                  **extra).last_hidden_state

        example = full.padded(full.tokenize(["an example text", "a second, longer example text"]))
        import openvino
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about the model's Python branches
            return openvino.convert_model(LastHiddenState(auto_model).eval(), example_input={
                name: torch.from_numpy(array) for name, array in example.items()})

    def encode(self, batch: list[Tokenized]) -> np.ndarray:
        """One forward pass over `batch` (padded to its longest text): float32 [n, dimension],
        not normalized."""
        inputs = self.padded(batch)
        hidden = self._request.infer({k: v for k, v in inputs.items() if k in self._inputs})[0]
        hidden = np.asarray(hidden, dtype=np.float32)
        if self._numpy_pooling:
            return mean_pool(hidden, inputs["attention_mask"])
        return self.full.pool(hidden, inputs["attention_mask"])


def plain_mean_pooling(modules) -> bool:
    """Whether the modules after the transformer are one sentence-transformers Pooling in mean
    mode over every token (no prompt exclusion, no dense layers): what mean_pool computes."""
    if len(modules) != 1 or type(modules[0]).__name__ != "Pooling":
        return False
    config = modules[0].get_config_dict()
    mode = config.get("pooling_mode")
    if mode is None:  # sentence-transformers < 5: one boolean per mode
        modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v is True]
        mode = "mean" if modes == ["pooling_mode_mean_tokens"] else None
    return mode == "mean" and config.get("include_prompt", True) is True


def mean_pool(token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Mean of each text's token embeddings over its attention mask, as sentence-transformers'
    Pooling computes it (sum of masked embeddings / token count clamped at 1e-9), float32."""
    mask = attention_mask.astype(np.float32)[:, :, None]
    summed = (token_embeddings * mask).sum(axis=1)
    return (summed / np.maximum(mask.sum(axis=1), 1e-9)).astype(np.float32, copy=False)
