"""What a job says, as a list of items: chunks to speak (text, speed multiplier) and pauses (seconds).
Plain text is split into sentences with a short pause between them; SSML is parsed first. The web side
uses it to validate and count chunks, the worker to synthesise, so both always agree."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.speech import ssml
from runtime.speech.chunks import split_text
from runtime.speech.keys import cache_key
from runtime.speech.text import speakable

MIN_SPEED, MAX_SPEED = 0.25, 4.0

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
            for n, chunk in enumerate(_speakable_chunks(seg.text, language)):
                if n:
                    items.append(Item(pause_s=SENTENCE_PAUSE_S))
                items.append(Item(text=chunk, rate=seg.rate))
        return items
    items = []
    for n, chunk in enumerate(_speakable_chunks(text, language)):
        if n:
            items.append(Item(pause_s=SENTENCE_PAUSE_S))
        items.append(Item(text=chunk))
    return items


def _speakable_chunks(text: str, language: str) -> list[str]:
    """Sentences with something to say; a sentence of only symbols or emoji is left out (an engine
    would give silence, or fail, for it)."""
    return [chunk for chunk in split_text(text, language) if speakable(chunk)]


def chunk_count(items: list[Item]) -> int:
    return sum(1 for item in items if item.text)


def chunk_key(engine: str, model_id: str, voice: str, item: Item, job_speed: float) -> str:
    """The cache key of one chunk's WAV. The worker writes it; a streaming response reads it."""
    return cache_key(engine=engine, model_id=model_id, voice=voice, text=item.text, fmt="wav",
                     params={"speed": chunk_speed(item, job_speed), "chunk": True})


def chunk_speed(item: Item, job_speed: float) -> float:
    return round(min(MAX_SPEED, max(MIN_SPEED, job_speed * item.rate)), 3)
