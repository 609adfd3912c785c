"""Validated speech requests, built from the callers' JSON shapes. Every mistake raises a typed 4xx."""

from __future__ import annotations

import math
from dataclasses import dataclass

from runtime.errors import InvalidInput
from runtime.speech import ssml
from runtime.speech.audio import FORMATS
from runtime.speech.engines import Voice
from runtime.speech.keys import cache_key
from runtime.speech.plan import MAX_SPEED, MIN_SPEED
from runtime.speech.text import normalise
from runtime.speech.voices import VoiceCatalog


@dataclass(frozen=True)
class SpeechRequest:
    text: str  # normalised
    voice: Voice
    format: str
    speed: float

    def key_for(self, voice: Voice, model_id: str) -> str:
        return cache_key(engine=voice.engine, model_id=model_id, voice=voice.name, text=self.text,
                         fmt=self.format, params={"speed": self.speed})


def _require_object(body: object) -> dict:
    if not isinstance(body, dict):
        raise InvalidInput("the JSON body must be an object", code="invalid_json")
    return body


def _text(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"'{field}' must be a string of text to speak", code="invalid_text")
    if len(value) > limit:  # counted as sent, before normalisation (as the OpenAPI document states)
        raise InvalidInput(f"'{field}' has {len(value)} characters; the limit is {limit}", code="text_too_long")
    text = normalise(value)
    if not text:
        raise InvalidInput(f"'{field}' is empty; give some text to speak", code="empty_text")
    if ssml.is_ssml(text):
        ssml.parse(text)  # malformed SSML is refused here; SSML with only breaks is their silence
    # Text with nothing to speak (only punctuation, symbols or emoji) is a short silence (the worker's
    # plan has no sentence in it): clients probe servers with texts such as "." and expect audio.
    return text


def _format(value: object, field: str) -> str:
    fmt = "mp3" if value is None else value
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise InvalidInput(f"'{field}' must be one of {', '.join(FORMATS)}, got {value!r}", code="unknown_format")
    return fmt


def _speed(value: object) -> float:
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"'speed' must be a number between {MIN_SPEED} and {MAX_SPEED}", code="invalid_speed")
    if not MIN_SPEED <= value <= MAX_SPEED:
        raise InvalidInput(f"'speed' must be between {MIN_SPEED} and {MAX_SPEED}, got {value}", code="invalid_speed")
    return round(float(value), 3)


def _voice(value: object, catalog: VoiceCatalog) -> Voice:
    if value is not None and not isinstance(value, str):
        raise InvalidInput("'voice' must be a string", code="unknown_voice")
    return catalog.resolve(value)


OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")


def _model_voice(model: object, voice: object, catalog: VoiceCatalog) -> Voice:
    """``model`` is one of OpenAI's TTS models (any voice) or an engine name, which picks that engine:
    an OpenAI voice name or no voice then means that engine's voice for the default voice's language."""
    if model is None or model in OPENAI_MODELS:
        return _voice(voice, catalog)
    if not isinstance(model, str) or model not in catalog.engines:
        known = ", ".join([*OPENAI_MODELS, *catalog.engines])
        raise InvalidInput(f"unknown model {model!r}; use one of {known} (GET /v1/models)", code="unknown_model")
    if voice is None or (isinstance(voice, str) and voice.strip().lower() in catalog.aliases):
        base = catalog.default
        return base if base.engine == model else catalog.voice_of(model, base.language)
    chosen = _voice(voice, catalog)
    if chosen.engine != model:
        raise InvalidInput(f"voice {chosen.id!r} belongs to engine {chosen.engine!r}, not to model {model!r}",
                           code="model_voice_mismatch")
    return chosen


def from_openai(body: object, catalog: VoiceCatalog, max_chars: int) -> SpeechRequest:
    """OpenAI's ``/v1/audio/speech`` shape: model, input, voice, response_format, speed (+ ignored extras
    such as ``instructions``, which no local engine supports)."""
    body = _require_object(body)
    if not isinstance(body.get("instructions", ""), str):
        raise InvalidInput("'instructions' must be a string", code="invalid_instructions")
    return SpeechRequest(
        text=_text(body.get("input"), "input", max_chars),
        voice=_model_voice(body.get("model"), body.get("voice"), catalog),
        format=_format(body.get("response_format"), "response_format"),
        speed=_speed(body.get("speed")),
    )


STREAM_FORMATS = ("audio", "sse")


def stream_format(body: dict) -> str:
    """OpenAI's ``stream_format``: ``audio`` (default: the audio bytes, sent as they are produced) or ``sse``."""
    value = body.get("stream_format")
    if value is None:
        return "audio"
    if value not in STREAM_FORMATS:
        raise InvalidInput(f"'stream_format' must be one of: {', '.join(STREAM_FORMATS)}", code="invalid_stream_format")
    return value


def mary_locale(language: str) -> str:
    """BCP 47-ish ``en-US`` → MaryTTS's ``en_US`` (``de`` stays ``de``)."""
    lang, _, region = language.partition("-")
    return f"{lang.lower()}_{region.upper()}" if region else lang.lower()


def _mary_voice(voice: str | None, locale: str | None, catalog: VoiceCatalog) -> Voice:
    """A known voice wins. Mary voice names we do not have (Home Assistant's default is ``cmu-slt-hsmm``)
    fall back to a voice for LOCALE, then to the default voice: never an error."""
    if voice:
        try:
            return catalog.resolve(voice)
        except InvalidInput:
            pass
    if locale:
        wanted = locale.replace("_", "-").lower()
        default = catalog.default
        if default.language.lower() == wanted or default.language.lower().split("-")[0] == wanted:
            return default
        for engine in catalog.engines:
            found = catalog.for_language(wanted, engine=engine)
            if found is not None:
                return found
    return catalog.default


def from_mary(params: dict[str, str], catalog: VoiceCatalog, max_chars: int) -> SpeechRequest:
    """MaryTTS's ``/process`` parameters (Home Assistant's ``marytts`` platform, OpenTTS clients).
    Supported: INPUT_TYPE=TEXT, OUTPUT_TYPE=AUDIO, AUDIO=WAVE_FILE, LOCALE, VOICE, and the Rate effect
    (``effect_Rate_selected=on``, ``effect_Rate_parameters=durScale:1.5;``); other effects are ignored."""
    input_type = params.get("INPUT_TYPE", "TEXT")  # MaryTTS's names are upper case, exactly
    if input_type not in ("TEXT", "SSML"):
        raise InvalidInput(f"INPUT_TYPE {input_type!r} is not supported here; use TEXT or SSML",
                           code="unsupported_input_type")
    if input_type == "SSML" and not ssml.is_ssml(params.get("INPUT_TEXT") or ""):
        raise InvalidInput("INPUT_TYPE=SSML needs a <speak> document", code="invalid_ssml")
    if params.get("OUTPUT_TYPE", "AUDIO") != "AUDIO":
        raise InvalidInput("OUTPUT_TYPE must be AUDIO", code="unsupported_output_type")
    if params.get("AUDIO", "WAVE_FILE") not in ("WAVE_FILE", "WAVE"):
        raise InvalidInput("AUDIO must be WAVE_FILE", code="unknown_format")
    speed = 1.0
    if params.get("effect_Rate_selected", "").lower() == "on":
        raw = params.get("effect_Rate_parameters", "durScale:1.5;")
        try:
            dur_scale = float(raw.split("durScale:")[1].split(";")[0])
        except (IndexError, ValueError):
            raise InvalidInput(f"effect_Rate_parameters must look like 'durScale:1.5;', got {raw!r}",
                               code="invalid_speed") from None
        if dur_scale <= 0:
            raise InvalidInput("durScale must be positive", code="invalid_speed")
        speed = _speed(1.0 / dur_scale)
    return SpeechRequest(
        text=_text(params.get("INPUT_TEXT"), "INPUT_TEXT", max_chars),
        voice=_mary_voice(params.get("VOICE"), params.get("LOCALE"), catalog),
        format="wav",
        speed=speed,
    )


def from_synthesize(body: object, catalog: VoiceCatalog, max_chars: int) -> SpeechRequest:
    """Our own shape: text, voice, format (default wav), speed."""
    body = _require_object(body)
    return SpeechRequest(
        text=_text(body.get("text"), "text", max_chars),
        voice=_voice(body.get("voice"), catalog),
        format=_format("wav" if body.get("format") is None else body["format"], "format"),  # null: the default
        speed=_speed(body.get("speed")),
    )
