"""Long text → chunks: one sentence each (sentencex: abbreviations and numbers understood, ~300
languages), so texts that share sentences share cached chunks. A sentence longer than ``max_chars`` is
cut at a clause, then a word boundary."""

from __future__ import annotations

import re

from sentencex import segment

MAX_CHUNK_CHARS = 400
_CLAUSE = re.compile(r"(?<=[,;:])\s+")


def _cut(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for part in _CLAUSE.split(sentence):
        for word in part.split(" ") if len(part) > max_chars else [part]:
            candidate = f"{current} {word}".strip()
            if len(candidate) > max_chars and current:
                pieces.append(current)
                candidate = word
            current = candidate
    if current:
        pieces.append(current)
    return pieces


def split_text(text: str, language: str = "en", max_chars: int = MAX_CHUNK_CHARS) -> list[str]:
    """Normalised text → non-empty chunks of at most ``max_chars`` characters (a single word longer than
    that stays whole). ``language`` is a BCP 47-ish code; its primary subtag picks the rules."""
    lang = (language or "en").split("-")[0].split("_")[0].lower()
    chunks: list[str] = []
    for sentence in segment(lang, text):
        sentence = sentence.strip()
        if sentence:
            chunks.extend(_cut(sentence, max_chars))
    return chunks or [text]
