"""What a job says, as a list of items: chunks to speak (text, speed multiplier) and pauses (seconds).
Plain text is split into sentences with a short pause between them; SSML is parsed first. The web side
uses it to validate and count chunks, the worker to synthesise, so both always agree."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.speech import ssml
from runtime.speech.chunks import split_text

SENTENCE_PAUSE_S = 0.12  # silence between stitched sentences of plain text


@dataclass(frozen=True)
class Item:
    text: str = ""  # empty: a pause
    rate: float = 1.0
    pause_s: float = 0.0


def plan(text: str, language: str) -> list[Item]:
    if ssml.is_ssml(text):
        items: list[Item] = []
        for seg in ssml.parse(text):
            if not seg.text:
                items.append(Item(pause_s=seg.pause_s))
                continue
            for n, chunk in enumerate(split_text(seg.text, language)):
                if n:
                    items.append(Item(pause_s=SENTENCE_PAUSE_S))
                items.append(Item(text=chunk, rate=seg.rate))
        return items
    items = []
    for n, chunk in enumerate(split_text(text, language)):
        if n:
            items.append(Item(pause_s=SENTENCE_PAUSE_S))
        items.append(Item(text=chunk))
    return items


def chunk_count(items: list[Item]) -> int:
    return sum(1 for item in items if item.text)
