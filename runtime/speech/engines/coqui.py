"""Coqui TTS in-process, through the ``coqui-tts`` package's public API (``TTS.api.TTS``), an optional
install (``requirements-coqui.txt``; the default service needs no torch).

A model comes from local files (``COQUI_MODEL_PATH`` + ``COQUI_CONFIG_PATH``, optionally a vocoder) or,
on a machine with internet, by Coqui model name (``COQUI_MODEL_NAME``, fetched by the package's own
manager when the worker loads it). Loaded once per worker process, with ``COQUI_THREADS`` torch threads.
Voices: one per speaker of a multi-speaker model (and per language of a multi-lingual one) when the
config names them in JSON files; otherwise one voice named after the model. Listing voices never loads
the model. Coqui's VITS has no speed control here, so the base class time-stretches.
"""

from __future__ import annotations

import json
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from runtime.speech.audio import Pcm
from runtime.speech.engines.base import Engine, EngineError, Voice
from runtime.speech.engines.manifest import file_sha256


def _json_names(path: str | None, base: Path) -> list[str]:
    """Names from a Coqui speakers/language ids JSON file (``{"name": id}``), if there is one."""
    if not path:
        return []
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = base / candidate
    if candidate.suffix != ".json" or not candidate.is_file():
        return []
    try:
        data = json.loads(candidate.read_text(encoding="utf-8"))
    except ValueError:
        return []
    return sorted(data) if isinstance(data, dict) else []


class CoquiEngine(Engine):
    name = "coqui"
    speed_range = (1.0, 1.0)

    def __init__(self, model_path: str = "", config_path: str = "", vocoder_path: str = "",
                 vocoder_config_path: str = "", model_name: str = "", threads: int = 1,
                 language: str = "") -> None:
        try:
            self.package_version = version("coqui-tts")
        except PackageNotFoundError:
            raise EngineError("coqui-tts is not installed: `make coqui` (or pip install -r requirements-coqui.txt)") \
                from None
        if not model_name and not model_path:
            raise EngineError("the coqui engine needs COQUI_MODEL_PATH and COQUI_CONFIG_PATH, or COQUI_MODEL_NAME")
        self.model_name = model_name
        self.model_path = Path(model_path) if model_path else None
        self.config_path = Path(config_path) if config_path else None
        self.vocoder_path = Path(vocoder_path) if vocoder_path else None
        self.vocoder_config_path = Path(vocoder_config_path) if vocoder_config_path else None
        for path, var in ((self.model_path, "COQUI_MODEL_PATH"), (self.config_path, "COQUI_CONFIG_PATH"),
                          (self.vocoder_path, "COQUI_VOCODER_PATH"),
                          (self.vocoder_config_path, "COQUI_VOCODER_CONFIG_PATH")):
            if path is not None and not path.is_file():
                raise EngineError(f"Coqui model file {path} does not exist; set {var} to an existing file")
        if self.model_path is not None and self.config_path is None:
            raise EngineError("COQUI_MODEL_PATH needs COQUI_CONFIG_PATH (the model's config.json)")
        self.threads = threads
        self._config = json.loads(self.config_path.read_text(encoding="utf-8")) if self.config_path else {}
        self.language = language or self._config.get("phoneme_language") or "en"
        self._tts = None
        self._lock = threading.Lock()
        self._identity: str | None = None

    # --- cheap half -----------------------------------------------------------------------------------

    def _base_name(self) -> str:
        if self.model_name:
            return self.model_name.replace("/", "--")
        return self.model_path.parent.name or self.model_path.stem

    def voices(self) -> list[Voice]:
        base = self.config_path.parent if self.config_path else Path(".")
        args = self._config.get("model_args", {}) or {}
        speakers = _json_names(args.get("speakers_file") or self._config.get("speakers_file"), base)
        languages = _json_names(args.get("language_ids_file") or self._config.get("language_ids_file"), base)
        name = self._base_name()
        if not speakers and not languages:
            return [Voice(self.name, name, self.language, f"Coqui TTS model {name}")]
        return [Voice(self.name, f"{name}/{speaker or 'default'}" + (f"@{lang}" if lang else ""),
                      lang or self.language, f"Coqui TTS model {name}, speaker {speaker or 'default'}")
                for speaker in (speakers or [""]) for lang in (languages or [""])]

    def model_files(self) -> list[Path]:
        return [p for p in (self.model_path, self.config_path, self.vocoder_path, self.vocoder_config_path) if p]

    def identity(self) -> str:
        if self._identity is None:
            files = self.model_files()
            digest = "".join(file_sha256(p)[:12] for p in files) if files else self.model_name
            self._identity = f"coqui-tts {self.package_version} {digest}"
        return self._identity

    # --- heavy half -----------------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._tts is not None

    def load(self) -> None:
        with self._lock:
            if self._tts is not None:
                return
            try:
                import torch
                from TTS.api import TTS

                torch.set_num_threads(self.threads)
                if self.model_path is not None:
                    self._tts = TTS(model_path=str(self.model_path), config_path=str(self.config_path),
                                    vocoder_path=str(self.vocoder_path) if self.vocoder_path else None,
                                    vocoder_config_path=str(self.vocoder_config_path)
                                    if self.vocoder_config_path else None, progress_bar=False)
                else:
                    self._tts = TTS(self.model_name, progress_bar=False)
            except Exception as exc:
                raise EngineError(f"Coqui could not load its model: {type(exc).__name__}: {exc}") from exc

    @property
    def sample_rate(self) -> int:
        return int(self._tts.synthesizer.output_sample_rate)

    def _synthesize(self, text: str, voice: str, speed: float) -> Pcm:
        known = {v.name for v in self.voices()}
        if voice not in known:
            raise EngineError(f"Coqui has no voice {voice!r}")
        speaker, _, language = voice.partition("/")[2].partition("@") if "/" in voice else ("", "", "")
        kwargs = {}
        if speaker and speaker != "default":
            kwargs["speaker"] = speaker
        if language:
            kwargs["language"] = language
        with self._lock:  # one synthesis at a time per process: torch already uses COQUI_THREADS threads
            wav = self._tts.tts(text, **kwargs)
        samples = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
        return Pcm((samples * 32767).astype("<i2").tobytes(), self.sample_rate)
