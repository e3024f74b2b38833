"""Whether a text has anything to embed or match: more than whitespace, control characters and
invisible format characters (zero-width space and joiners, the byte-order mark, direction marks).

"\u200b\u200b" or "\x00" passes str.strip() but gives the model nothing: a vector of its
special tokens alone, which matches everything a little and nothing well.
"""
from __future__ import annotations

import unicodedata

# Cc: control (NUL, ESC, ...), Cf: format (U+200B zero-width space, U+FEFF, U+200E/F marks...).
_INVISIBLE = frozenset({"Cc", "Cf"})


def has_content(text: str) -> bool:
    return any(not char.isspace() and unicodedata.category(char) not in _INVISIBLE
               for char in text)
