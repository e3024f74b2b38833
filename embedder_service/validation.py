"""Request limits: each failure is InvalidArgument naming the limit and the text's position."""
from __future__ import annotations

from dataclasses import dataclass

from servekit.errors import InvalidArgument
from servekit.text import has_content

from .backend import Tokenized


@dataclass(frozen=True)
class Limits:
    max_texts_per_request: int
    max_chars_per_text: int
    max_seq_length: int


def check_texts(texts, limits: Limits) -> list[str]:
    """The request's texts as a list, or InvalidArgument for the first problem found."""
    if len(texts) == 0:
        raise InvalidArgument("texts is empty: send 1 to "
                              f"{limits.max_texts_per_request} texts per request")
    if len(texts) > limits.max_texts_per_request:
        raise InvalidArgument(f"{len(texts)} texts in one request, over max_texts_per_request="
                              f"{limits.max_texts_per_request}: split the request")
    for i, text in enumerate(texts):
        if len(text) > limits.max_chars_per_text:
            raise InvalidArgument(f"texts[{i}] has {len(text)} characters, over max_chars_per_text="
                                  f"{limits.max_chars_per_text}")
        if not has_content(text):
            raise InvalidArgument(f"texts[{i}] is empty, or only whitespace and invisible "
                                  "characters: every text needs content")
    return list(texts)


def check_lengths(tokens: list[Tokenized], limits: Limits) -> None:
    """With truncate=false: InvalidArgument for the first text longer than max_seq_length."""
    for i, t in enumerate(tokens):
        if t.truncated:
            raise InvalidArgument(
                f"texts[{i}] has {t.full_length} tokens, over max_seq_length={limits.max_seq_length} "
                "and truncate=false: shorten it, or leave truncate unset to cut it to the limit")
