"""An SSML subset, parsed safely. Supported: ``<speak>``, ``<break time|strength>``, ``<prosody rate>``,
``<say-as interpret-as="characters|spell-out|digits">``, ``<sub alias>``, ``<p>``, ``<s>``. Any other element
is read as its text: markup is never executed. Parsing uses defusedxml with DTDs forbidden, so entity
expansion (billion laughs) and external entities (XXE) are refused, not evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from runtime.errors import InvalidInput

MAX_BREAK_S = 10.0
_STRENGTHS = {"none": 0.0, "x-weak": 0.1, "weak": 0.2, "medium": 0.4, "strong": 0.7, "x-strong": 1.2}
_RATES = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.75}
_PARAGRAPH_PAUSE_S, _SENTENCE_PAUSE_S = 0.4, 0.15
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")


@dataclass(frozen=True)
class Segment:
    """Text to speak at ``rate`` times the request's speed, or (``text`` empty) a pause of ``pause_s``."""

    text: str = ""
    rate: float = 1.0
    pause_s: float = 0.0


def is_ssml(text: str) -> bool:
    """SSML is recognised by content: a ``<speak>`` document, or any XML document (``<?xml``,
    ``<!DOCTYPE``), which is then parsed and refused unless it is SSML."""
    head = text.lstrip()[:9].lower()
    return head.startswith(("<speak", "<?xml", "<!doctype"))


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(f"invalid SSML: {message}", code="invalid_ssml")


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1].lower()  # drop an XML namespace


def _break(el: Element) -> float:
    time = el.get("time")
    if time is not None:
        match = _TIME.match(time)
        if not match:
            raise _invalid(f"<break time={time!r}> must look like '500ms' or '2s'")
        seconds = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
        return min(seconds, MAX_BREAK_S)
    strength = (el.get("strength") or "medium").lower()
    if strength not in _STRENGTHS:
        raise _invalid(f"<break strength={strength!r}> must be one of {', '.join(_STRENGTHS)}")
    return _STRENGTHS[strength]


def _rate(value: str | None) -> float:
    if value is None:
        return 1.0
    value = value.strip().lower()
    if value in _RATES:
        return _RATES[value]
    try:
        rate = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise _invalid(f"<prosody rate={value!r}> must be x-slow…x-fast, a percentage or a number") from None
    if rate <= 0:
        raise _invalid("<prosody rate> must be positive")
    return rate


def _say_as(el: Element, text: str) -> str:
    kind = (el.get("interpret-as") or "").lower()
    if kind in ("characters", "spell-out"):
        return " ".join(ch for ch in text if not ch.isspace())
    if kind == "digits":
        return " ".join(ch for ch in text if ch.isdigit())
    return text


def parse(ssml: str) -> list[Segment]:
    """SSML → segments. Malformed input raises ``invalid_ssml`` naming the line and column."""
    try:
        root = SafeET.fromstring(ssml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except ParseError as exc:
        line, column = exc.position
        raise _invalid(f"{exc.msg if hasattr(exc, 'msg') else exc} (line {line}, column {column})") from None
    except DefusedXmlException:
        raise _invalid("DTDs and entity declarations are not allowed") from None
    if _local(root.tag) != "speak":
        raise _invalid(f"the root element must be <speak>, not <{_local(root.tag)}>")
    segments: list[Segment] = []

    def say(text: str | None, rate: float) -> None:
        if text and text.strip():
            segments.append(Segment(text=" ".join(text.split()), rate=rate))

    def pause(seconds: float) -> None:
        if seconds > 0:
            segments.append(Segment(pause_s=seconds))

    def walk(el: Element, rate: float) -> None:
        tag = _local(el.tag)
        if tag == "break":
            pause(_break(el))
        elif tag == "sub":
            say(el.get("alias") or "".join(el.itertext()), rate)
        elif tag == "say-as":
            say(_say_as(el, "".join(el.itertext())), rate)
        else:
            inner = rate * _rate(el.get("rate")) if tag == "prosody" else rate
            say(el.text, inner)
            for child in el:
                walk(child, inner)
                say(child.tail, inner)
            if tag == "p":
                pause(_PARAGRAPH_PAUSE_S)
            elif tag == "s":
                pause(_SENTENCE_PAUSE_S)

    walk(root, 1.0)
    return _merge(segments)


def _merge(segments: list[Segment]) -> list[Segment]:
    """Join neighbouring text of one rate, add up neighbouring pauses, drop leading and trailing pauses."""
    merged: list[Segment] = []
    for seg in segments:
        last = merged[-1] if merged else None
        if last and seg.text and last.text and last.rate == seg.rate:
            merged[-1] = Segment(text=f"{last.text} {seg.text}", rate=seg.rate)
        elif last and not seg.text and not last.text:
            merged[-1] = Segment(pause_s=min(MAX_BREAK_S, last.pause_s + seg.pause_s))
        else:
            merged.append(seg)
    while merged and not merged[-1].text:
        merged.pop()
    while merged and not merged[0].text:
        merged.pop(0)
    return merged
