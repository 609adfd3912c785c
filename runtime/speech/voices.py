"""The voice catalogue: every engine's voices, resolution of caller-supplied names, fallback choice."""

from __future__ import annotations

from runtime.errors import InvalidInput
from runtime.settings import Settings
from runtime.speech.engines import Engine, Voice

ENGINE_NAMES = {"piper": "Piper", "espeak": "eSpeak NG", "coqui": "Coqui TTS", "external": "external engine"}


def display_name(voice: Voice) -> str:
    """A name people read: ``Joe (English, US)`` for Piper's ``en_US-joe-medium``, the language for an eSpeak
    NG voice (``Afrikaans``), else the engine's description or name."""
    if voice.engine == "piper" and voice.name.count("-") >= 2:
        speaker = voice.name.split("-")[1].replace("_", " ").title()
        language = (voice.description or voice.language).split(" (")[0].split(",")[0]
        region = voice.language.split("-")[1] if "-" in voice.language else ""
        return f"{speaker} ({language}{', ' + region if region else ''})"
    return voice.description or voice.name


def labelled(voice: Voice) -> str:
    """``Joe (English, US) — Piper``: the voice's name and the engine that speaks it."""
    return f"{display_name(voice)} — {ENGINE_NAMES.get(voice.engine, voice.engine)}"


class VoiceCatalog:
    def __init__(self, engines: dict[str, Engine], settings: Settings) -> None:
        self.engines = engines
        self._by_id: dict[str, Voice] = {}
        self._by_name: dict[str, list[Voice]] = {}
        for engine in engines.values():
            for voice in engine.voices():
                self._by_id[voice.id] = voice
                self._by_name.setdefault(voice.name.lower(), []).append(voice)
        self.aliases = {k.lower(): v for k, v in settings.voice_aliases.items()}
        self.fallbacks = {voice_id: [v.strip() for v in chain.split("|") if v.strip()]
                          for voice_id, chain in settings.voice_fallbacks.items()}
        self.default = self._pick_default(settings)
        self.fallback_default = self._by_id.get(settings.fallback_voice)

    def _pick_default(self, settings: Settings) -> Voice:
        for candidate in (settings.default_voice, settings.fallback_voice):
            if candidate in self._by_id:
                return self._by_id[candidate]
        return next(iter(self._by_id.values()))

    def all(self) -> list[Voice]:
        return list(self._by_id.values())

    def resolve(self, requested: str | None) -> Voice:
        """A voice id (``piper:en_US-joe-medium``), a bare voice name when unambiguous, or a configured
        alias such as OpenAI's ``alloy``. None or empty → the default voice."""
        if requested is None or not str(requested).strip():
            return self.default
        name = str(requested).strip()
        if name in self._by_id:
            return self._by_id[name]
        alias = self.aliases.get(name.lower())
        if alias is not None:
            return self._by_id.get(alias, self.default)
        matches = self._by_name.get(name.lower(), [])
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidInput(f"voice {name!r} is ambiguous; use one of {[v.id for v in matches]}",
                               code="ambiguous_voice")
        raise InvalidInput(f"unknown voice {name!r}; GET /api/voices lists the voices", code="unknown_voice")

    def for_language(self, language: str, *, engine: str | None = None,
                     exclude_engine: str | None = None) -> Voice | None:
        """A voice for ``language`` (``en-US`` or ``en_US``): an exact match first, then one for the language
        family (``en``); limited to ``engine`` or to other engines than ``exclude_engine`` when given."""
        voices = [v for v in self._by_id.values()
                  if (engine is None or v.engine == engine) and v.engine != exclude_engine]
        lang = language.replace("_", "-").lower()
        for wanted in (lang, lang.split("-")[0]):
            for v in voices:
                if v.language.lower() == wanted:
                    return v
        return None

    def voice_of(self, engine: str, language: str) -> Voice:
        """The engine's voice for ``language``, else its first voice."""
        found = self.for_language(language, engine=engine)
        return found or next(v for v in self._by_id.values() if v.engine == engine)

    def chain(self, voice: Voice) -> list[Voice]:
        """The voices to try in order for ``voice``: itself, then ``VOICE_FALLBACKS``'s list for it when
        configured (voices of engines that are not set up are left out), else the automatic fallback."""
        configured = self.fallbacks.get(voice.id)
        if configured is None:
            fallback = self.fallback_for(voice)
            return [voice] if fallback is None else [voice, fallback]
        return [voice, *(self._by_id[v] for v in configured if v in self._by_id and v != voice.id)]

    def fallback_for(self, voice: Voice) -> Voice | None:
        """A voice of another engine in the same language (eSpeak NG speaks ~130), else the configured
        fallback voice; None when nothing else can speak."""
        found = self.for_language(voice.language, exclude_engine=voice.engine)
        if found is not None:
            return found
        if self.fallback_default is not None and self.fallback_default.engine != voice.engine:
            return self.fallback_default
        return None
