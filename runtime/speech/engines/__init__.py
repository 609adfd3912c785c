"""Engine registry: engine names → factories. Unknown names are rejected at start-up."""

from __future__ import annotations

from collections.abc import Callable

from runtime.settings import ISOLATED_ENGINES, Settings
from runtime.speech.engines.base import CANARY_TEXT, Engine, EngineError, ProbeResult, Voice


def _piper(settings: Settings) -> Engine:
    from pathlib import Path

    from runtime.speech.engines.piper import PiperEngine

    model = Path(settings.piper_model_path) if settings.piper_model_path else None
    config = Path(settings.piper_config_path) if settings.piper_config_path else None
    return PiperEngine(model, config, threads=settings.piper_threads)


def _espeak(settings: Settings) -> Engine:
    from runtime.speech.engines.espeak import EspeakEngine

    return EspeakEngine()


def _coqui(settings: Settings) -> Engine:
    from runtime.speech.engines.coqui import CoquiEngine

    return CoquiEngine(settings.coqui_model_path, settings.coqui_config_path, settings.coqui_vocoder_path,
                       settings.coqui_vocoder_config_path, settings.coqui_model_name, settings.coqui_threads,
                       settings.coqui_language)


def _external(settings: Settings) -> Engine:
    from runtime.speech.engines.external import ExternalEngine

    return ExternalEngine(settings.external_url, settings.external_api, settings.external_voices,
                          settings.external_model, settings.external_timeout_s, settings.external_retries)


FACTORIES: dict[str, Callable[[Settings], Engine]] = {"piper": _piper, "espeak": _espeak, "coqui": _coqui,
                                                     "external": _external}


def build_engine(name: str, settings: Settings) -> Engine:
    """One engine, not loaded (also how an engine's worker process builds its own copy)."""
    engine = FACTORIES[name](settings)
    engine.deadline_s = settings.deadline_for(name)
    return engine


def isolate_engines(engines: dict[str, Engine], settings: Settings) -> dict[str, Engine]:
    """With ``ENGINE_ISOLATION=process`` (the default), the engines that run native code synthesise in their
    own worker processes (``runtime.speech.engines.isolated``); the external HTTP engine stays in-process."""
    if settings.engine_isolation != "process":
        return engines
    from runtime.speech.engines.isolated import ProcessIsolated

    return {name: ProcessIsolated(engine, "runtime.speech.engines:build_engine", (name, settings),
                                  settings.processes_for(name), settings.log_level, settings.log_json,
                                  idle_args=_idle_lane(name, settings), idle_threads=settings.piper_idle_threads)
            if name in ISOLATED_ENGINES else engine for name, engine in engines.items()}


def _idle_lane(name: str, settings: Settings) -> tuple | None:
    """How the idle lane's engine is built: Piper with ``PIPER_IDLE_THREADS`` threads (when more than its
    shared processes use). eSpeak NG is single-threaded and fast; Coqui is left to ``COQUI_THREADS``."""
    if name == "piper" and settings.piper_idle_threads > settings.piper_threads:
        return name, settings.with_(piper_threads=settings.piper_idle_threads)
    return None


def build_engines(settings: Settings, disabled: dict[str, str] | None = None) -> dict[str, Engine]:
    """Instantiate the engines ``ENGINES`` names, in order. Cheap: models are loaded by ``load()``.

    An engine whose files are missing, or differ from the model manifest, is reported (and recorded in
    ``disabled``: name → reason) and left out; the service starts with the rest.
    """
    from loguru import logger

    from runtime.speech.engines import manifest

    disabled = disabled if disabled is not None else {}
    manifest_path = settings.model_manifest_path
    try:
        listed = manifest.load(manifest_path)
    except EngineError as exc:
        listed = {}  # an unreadable manifest verifies nothing: every engine with model files is disabled
        logger.error("{}", exc)
    if listed is None:
        logger.info("no model manifest at {}; `python -m runtime models --write-manifest` records one",
                    manifest_path)
    engines: dict[str, Engine] = {}
    for name in settings.engines:
        if name not in FACTORIES:
            raise ValueError(f"unknown engine {name!r} in ENGINES; known: {', '.join(FACTORIES)}")
        try:
            engine = build_engine(name, settings)
            if listed is not None:
                manifest.verify(engine, listed, manifest_path)
            engines[name] = engine
        except EngineError as exc:
            disabled[name] = str(exc)
            logger.error("engine {} disabled: {}", name, exc)
    if not engines:
        raise EngineError(f"no engine of ENGINES={','.join(settings.engines)} could be set up; see the log above")
    return engines


__all__ = ["CANARY_TEXT", "Engine", "EngineError", "ProbeResult", "Voice", "build_engine", "build_engines",
           "isolate_engines"]
