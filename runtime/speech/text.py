"""Text normalisation: what the cache key and the engines see.

NFC Unicode, control characters removed, whitespace runs collapsed to one space, ends stripped.
Two requests that differ only in such details share one cache entry.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b\ufeff]")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    return _SPACE.sub(" ", text).strip()


def speakable(text: str) -> bool:
    """Whether there is anything to say: a letter or a digit (punctuation, symbols and emoji alone give
    engines nothing to speak, or silence)."""
    return any(ch.isalnum() for ch in text)
