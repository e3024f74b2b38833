"""The OpenVINO backend: the model's transformer compiled by OpenVINO for this CPU.

Only the forward pass of the transformer changes hands. Tokenization, truncation and padding are
the torch backend's (this class extends it), and the modules after the transformer (pooling, no
Normalize) run in torch on OpenVINO's token embeddings, so the vectors are the model's own recipe
(a plain mean Pooling, as all-MiniLM-L6-v2 has, runs in numpy with torch's arithmetic: 0.1 ms
against torch's 0.4 ms for one query, measured here):
OpenVINO fp32 matches torch fp32 to ~2e-7, bf16 to cosine >= 0.9999 (tests/test_embedder_quality.py).

At start the packaged model is converted offline with `openvino.convert_model` (its transformer
module, traced with an example batch; dynamic batch and sequence length), or read from the cache
(embedder_service/ov_cache.py), then compiled for the CPU with the chosen precision as
INFERENCE_PRECISION_HINT. OpenVINO's own default on a bf16-capable CPU is already bf16, so fp32
is always set explicitly. One compiled model and one infer request, used only by the batcher's
model thread (an infer request is not thread-safe).
"""
from __future__ import annotations

import logging
import sys
import time
import warnings

import numpy as np

from . import ov_cache
from .backend import SentenceTransformerBackend, Tokenized

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


class OpenVINOBackend(SentenceTransformerBackend):
    backend_name = "openvino"

    def __init__(self, model_path: str = "", torch_threads: int = 0, precision: str = "fp32",
                 cache_dir: str = "", threads: int = 0):
        super().__init__(model_path, torch_threads)
        self.precision = precision
        ov = import_openvino()
        started = time.perf_counter()
        model, how = ov_cache.load_or_convert(
            ov_cache.resolve_cache_dir(cache_dir), ov_cache.cache_key(self.model_path, ov.__version__),
            read=ov.Core().read_model, convert=self._convert,
            save=lambda m, xml: ov.save_model(m, str(xml), compress_to_fp16=False))
        loaded = time.perf_counter()
        settings = {"INFERENCE_PRECISION_HINT": OV_PRECISION[precision], "PERFORMANCE_HINT": "LATENCY"}
        if threads > 0:
            settings["INFERENCE_NUM_THREADS"] = threads
        compiled = ov.Core().compile_model(model, "CPU", settings)
        self._request = compiled.create_infer_request()
        self._inputs = {port.get_any_name() for port in compiled.inputs}
        self._numpy_pooling = plain_mean_pooling(self._modules[1:])
        log.info("openvino %s: model %s in %.1f s, compiled for CPU (%s) in %.1f s", ov.__version__,
                 how, loaded - started, OV_PRECISION[precision], time.perf_counter() - loaded)

    def _convert(self):
        """The transformer as an OpenVINO model: inputs as the tokenizer gives them (batch and
        sequence length dynamic), output the last hidden state (token embeddings)."""
        import torch

        transformer = self._modules[0]
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

        example = self.padded(self.tokenize(["an example text", "a second, longer example text"]))
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
        return self.pool(hidden, inputs["attention_mask"])


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
