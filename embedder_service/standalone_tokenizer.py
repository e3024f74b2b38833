"""The model's tokenizer and serving facts without torch, transformers or sentence-transformers.

A start of the OpenVINO backend from its cache needs three things from the model besides the
converted transformer: its tokenizer, how long a text may be, and how token embeddings become a
vector. The transformers fast tokenizer is a wrapper around a Rust tokenizer (the `tokenizers`
package); the wrapper's only part in a call like ours is to set truncation (max_seq_length, on the
tokenizer's truncation side) before encoding. So the Rust tokenizer saved as JSON, with that
truncation set here, gives the same token ids, and a start from the cache skips importing torch
and sentence-transformers (~10 s of a ~11 s start on 2 cores, and their memory).

    DIR/<entry>/tokenizer.json    the Rust tokenizer, as the model's fast tokenizer holds it
    DIR/<entry>/serving.json      ServingFacts: dimension, max_seq_length, pad id, type ids, side

They are written only when the model's pooling is plain mean pooling (what mean_pool computes in
numpy) and the saved tokenizer reproduces the transformers call on probe texts (truncated ones
among them); otherwise every start loads the model the full way.
"""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from .backend import Tokenized, untruncated_lengths
from .ov_cache import MODEL_XML

TOKENIZER_FILE = "tokenizer.json"
FACTS_FILE = "serving.json"
# Texts the saved tokenizer must tokenize exactly as the transformers call does, before it is kept:
# accents and case (the normalizer), CJK and emoji, control characters, whitespace, and texts
# past max_seq_length (truncation, on which side, and the untruncated count).
PROBES = ("an example text", "", "  Leading and trailing  ", "Ünïcödé CAFÉ 北京 🙂 \u200b x",
          "tab\tnew\nline\x00", "ﬁ ligature", "word " * 300, "Z" * 3000,
          "first " + "middle " * 300 + "last")


@dataclass(frozen=True)
class ServingFacts:
    dimension: int          # the pooled vector's length
    max_seq_length: int     # tokens kept per text, special tokens included
    pad_id: int
    uses_type_ids: bool
    truncation_side: str    # "right" or "left"


class StandaloneTokenizer:
    """Tokenize as the torch backend does (SentenceTransformerBackend.tokenize), with the Rust
    tokenizer alone. Two tokenizer objects with fixed settings (truncating, and untruncated for the
    full count of long texts), never reconfigured after construction: so no lock is needed, unlike
    the transformers wrapper, which sets truncation on its shared tokenizer at every call."""

    def __init__(self, tokenizer_json: str, facts: ServingFacts):
        from tokenizers import Tokenizer

        self.facts = facts
        self._cut = Tokenizer.from_str(tokenizer_json)
        self._cut.no_padding()
        self._cut.enable_truncation(facts.max_seq_length, strategy="longest_first",
                                    direction=facts.truncation_side)
        self._whole = Tokenizer.from_str(tokenizer_json)
        self._whole.no_padding()
        self._whole.no_truncation()

    def tokenize(self, texts: list[str]) -> list[Tokenized]:
        encodings = self._cut.encode_batch(list(texts))
        full = untruncated_lengths(texts, [e.ids for e in encodings], self.facts.max_seq_length,
                                   lambda cut: [len(e.ids) for e in self._whole.encode_batch(cut)])
        return [Tokenized(e.ids, e.type_ids if self.facts.uses_type_ids else None, full[i])
                for i, e in enumerate(encodings)]


def facts_of(backend) -> ServingFacts:
    """The serving facts of a loaded SentenceTransformerBackend."""
    return ServingFacts(dimension=backend.dimension, max_seq_length=backend.max_seq_length,
                        pad_id=backend.pad_id, uses_type_ids=backend.uses_type_ids,
                        truncation_side=str(getattr(backend.tokenizer, "truncation_side", "right")))


def from_torch_backend(backend) -> tuple[str, ServingFacts]:
    """The tokenizer JSON and serving facts of a loaded SentenceTransformerBackend."""
    return backend.tokenizer.backend_tokenizer.to_str(), facts_of(backend)


def reproduces(standalone: StandaloneTokenizer, backend, probes=PROBES) -> bool:
    """Whether `standalone` gives the torch backend's tokens (ids, type ids, full length)."""
    return standalone.tokenize(list(probes)) == backend.tokenize(list(probes))


def save(entry: Path, tokenizer_json: str, facts: ServingFacts) -> None:
    """Into an existing cache entry, each file atomically; the facts last, since load() looks for
    them first (two embedders saving at once write the same bytes)."""
    _write_atomic(entry / TOKENIZER_FILE, tokenizer_json)
    _write_atomic(entry / FACTS_FILE, json.dumps(asdict(facts), indent=1))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load(entry: Path | None) -> StandaloneTokenizer | None:
    """The entry's standalone tokenizer, or None where the entry has none (or a damaged one: the
    caller then loads the model the full way, which is always correct, only slower)."""
    if entry is None or not (entry / FACTS_FILE).is_file() or not (entry / MODEL_XML).is_file():
        return None
    try:
        facts = ServingFacts(**json.loads((entry / FACTS_FILE).read_text(encoding="utf-8")))
        return StandaloneTokenizer((entry / TOKENIZER_FILE).read_text(encoding="utf-8"), facts)
    except Exception:  # noqa: BLE001 - unreadable, wrong fields, a tokenizer that will not parse
        return None
