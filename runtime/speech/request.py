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


MARY_CODECS = {"WAVE_FILE": "wav", "WAVE": "wav", "AU_FILE": "au", "AU": "au", "AIFF_FILE": "aiff", "AIFF": "aiff"}
MAX_VOLUME = 10.0


def _effect(params: dict[str, str], name: str, field: str, default: str, code: str) -> float | None:
    """A MaryTTS effect's number (``effect_Rate_parameters=durScale:1.5;``) when the effect is selected."""
    if params.get(f"effect_{name}_selected", "").lower() != "on":
        return None
    raw = params.get(f"effect_{name}_parameters") or default
    try:
        value = float(raw.split(f"{field}:")[1].split(";")[0])
    except (IndexError, ValueError):
        raise InvalidInput(f"effect_{name}_parameters must look like {default!r}, got {raw!r}",
                           code=code) from None
    if not math.isfinite(value) or value <= 0:
        raise InvalidInput(f"{field} must be a positive number", code=code)
    return value


def mary_output(params: dict[str, str]) -> tuple[str, float]:
    """The codec asked for (``wav``, ``au``, ``aiff``) and the Volume effect's gain (1 without it)."""
    volume = _effect(params, "Volume", "amount", "amount:2.0;", "invalid_effect") or 1.0
    if volume > MAX_VOLUME:
        raise InvalidInput(f"the Volume effect's amount is at most {MAX_VOLUME:g}", code="invalid_effect")
    return MARY_CODECS.get(params.get("AUDIO", "WAVE_FILE"), "wav"), volume


def from_mary(params: dict[str, str], catalog: VoiceCatalog, max_chars: int) -> SpeechRequest:
    """MaryTTS's ``/process`` parameters (Home Assistant's ``marytts`` platform through ``speak2mary``,
    OpenTTS clients). Supported: INPUT_TYPE=TEXT|SSML, OUTPUT_TYPE=AUDIO, AUDIO=WAVE_FILE|AU_FILE|AIFF_FILE
    (``mary_output``), LOCALE, VOICE, and the effects Rate (``durScale``: speed) and Volume (``amount``: gain,
    ``mary_output``); the other effects speak2mary offers are accepted and ignored. The request is for WAV,
    which is what is cached; the codec and volume are applied to the answer."""
    input_type = params.get("INPUT_TYPE", "TEXT")  # MaryTTS's names are upper case, exactly
    if input_type not in ("TEXT", "SSML"):
        raise InvalidInput(f"INPUT_TYPE {input_type!r} is not supported here; use TEXT or SSML",
                           code="unsupported_input_type")
    if input_type == "SSML" and not ssml.is_ssml(params.get("INPUT_TEXT") or ""):
        raise InvalidInput("INPUT_TYPE=SSML needs a <speak> document", code="invalid_ssml")
    if params.get("OUTPUT_TYPE", "AUDIO") != "AUDIO":
        raise InvalidInput("OUTPUT_TYPE must be AUDIO", code="unsupported_output_type")
    if params.get("AUDIO", "WAVE_FILE") not in MARY_CODECS:
        raise InvalidInput(f"AUDIO must be one of {', '.join(MARY_CODECS)}", code="unknown_format")
    dur_scale = _effect(params, "Rate", "durScale", "durScale:1.5;", "invalid_speed")
    speed = 1.0 if dur_scale is None else _speed(1.0 / dur_scale)
    mary_output(params)  # a bad codec or volume is refused before any synthesis
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
