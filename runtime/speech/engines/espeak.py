"""eSpeak NG (GPL-3.0): formant synthesis, ~130 languages, tiny and fast — the fallback engine.

The library comes from the ``espeakng-loader`` wheel (no system package). It is bound with ctypes here
because no maintained PyPI package wraps libespeak-ng's synthesis API (the ones that exist drive the
``espeak-ng`` command line or only phonemise). The C library keeps global state and is not thread-safe,
so every call holds one lock per process.
"""

from __future__ import annotations

import ctypes
import threading
from importlib.metadata import version

from runtime.speech.audio import Pcm
from runtime.speech.engines.base import Engine, EngineError, Voice

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE = 1
_NORMAL_RATE_WPM = 175
_MIN_RATE_WPM, _MAX_RATE_WPM = 80, 450

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _VoiceStruct(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


class _Library:
    """The process's one libespeak-ng, initialised once. All access under ``lock``."""

    lock = threading.Lock()
    _instance: _Library | None = None

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_VoiceStruct))
        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if self.sample_rate <= 0:
            raise EngineError("eSpeak NG failed to initialise (espeak_Initialize returned an error)")
        self._chunks: list[bytes] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> _Library:
        with cls.lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _collect(self, wav, count, _events) -> int:
        if wav and count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0

    def languages(self) -> list[tuple[str, str]]:
        """(language code, display name) of every installed voice."""
        found: list[tuple[str, str]] = []
        with self.lock:
            table = self.lib.espeak_ListVoices(None)
            i = 0
            while table[i]:
                entry = table[i].contents
                raw = ctypes.string_at(entry.languages, 64)
                code = raw[1:raw.index(b"\0", 1)].decode()  # first byte is a priority
                found.append((code, entry.name.decode()))
                i += 1
        return found

    def speak(self, text: str, voice: str, rate_wpm: int) -> Pcm:
        data = text.encode("utf-8")
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EngineError(f"eSpeak NG has no voice {voice!r}")
            self.lib.espeak_SetParameter(_RATE, rate_wpm, 0)
            self._chunks = []
            status = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
            samples, self._chunks = b"".join(self._chunks), []
        if status != 0:
            raise EngineError(f"eSpeak NG synthesis failed with status {status}")
        return Pcm(samples, self.sample_rate)


class EspeakEngine(Engine):
    name = "espeak"
    # eSpeak's rate range is 80-450 wpm around a normal 175: beyond it the base class time-stretches.
    speed_range = (_MIN_RATE_WPM / _NORMAL_RATE_WPM, _MAX_RATE_WPM / _NORMAL_RATE_WPM)

    def __init__(self) -> None:
        self._lib: _Library | None = None
        self._voices: list[Voice] | None = None
        self._identity: str | None = None

    def voices(self) -> list[Voice]:
        if self._voices is None:
            seen: dict[str, Voice] = {}
            for code, display in _Library.get().languages():
                seen.setdefault(code, Voice(self.name, code, code, display))
            self._voices = sorted(seen.values(), key=lambda v: v.name)
        return self._voices

    def identity(self) -> str:
        if self._identity is None:
            self._identity = f"espeakng-loader {version('espeakng-loader')}"  # (a metadata read: not per call)
        return self._identity

    @property
    def loaded(self) -> bool:
        return self._lib is not None

    def load(self) -> None:
        self._lib = _Library.get()

    def _synthesize(self, text: str, voice: str, speed: float) -> Pcm:
        rate = max(_MIN_RATE_WPM, min(_MAX_RATE_WPM, round(_NORMAL_RATE_WPM * speed)))
        return self._lib.speak(text, voice, rate)
